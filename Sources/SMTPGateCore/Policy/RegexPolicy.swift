/// `regex_*` at HELO, MAIL and RCPT: every rule for the command's field, in the option table's order
/// (reject before enforce). Pure.
public struct RegexPolicy: Sendable, Equatable {
    public var rules: [RegexRule]

    public enum Verdict: Sendable, Equatable {
        case pass
        /// A reject rule matched, or an enforce rule did not.
        case refuse(RegexRule)
        /// A rule could not be decided (a PCRE limit): a temporary refusal, so nothing is lost.
        case failed(RegexRule, String)
    }

    public init(rules: [RegexRule]) {
        self.rules = rules
    }

    public func verdict(_ point: PolicyPoint) -> Verdict {
        guard let (field, text) = RegexRule.subject(point) else { return .pass }
        for rule in rules where rule.field == field {
            switch (rule.regex.match(text.utf8), rule.action) {
            case (.match, .reject), (.noMatch, .enforce): return .refuse(rule)
            case (.match, .enforce), (.noMatch, .reject): continue
            case (.failed(let why), _): return .failed(rule, why)
            }
        }
        return .pass
    }

    /// The reply for a verdict that is not `.pass`.
    public static func reply(_ v: Verdict) -> PolicyReply? {
        switch v {
        case .pass:
            return nil
        case .refuse(let rule):
            let what: String
            let key: ReplyText
            switch rule.field {
            case .helo: (what, key) = ("HELO name rejected", .regexHelo)
            case .mailFrom: (what, key) = ("sender address rejected", .regexMailFrom)
            case .rcptTo: (what, key) = ("recipient address rejected", .regexRcptTo)
            }
            return PolicyReply(code: 550, enhanced: "5.7.1", text: "\(what) by policy", why: .regex,
                               wording: ReplyWording(key, ["option": rule.optionName]))
        case .failed:
            return PolicyReply(code: 451, enhanced: "4.3.0", text: "temporary failure checking the command, try again later",
                               why: .regexFailed)
        }
    }
}
