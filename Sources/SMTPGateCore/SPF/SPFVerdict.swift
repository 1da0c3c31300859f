/// What the session does with an SPF result: RFC 7208 §8 and RFC 7372's codes, `spf_log_only`, and the
/// optional Received-SPF header (§9.1).
public struct SPFVerdict: Sendable, Equatable {
    public var result: SPFResult
    public var reason: String
    public var ip: String
    public var sender: String
    public var helo: String

    public init(result: SPFResult, reason: String, ip: String, sender: String, helo: String) {
        self.result = result
        self.reason = reason
        self.ip = ip
        self.sender = sender
        self.helo = helo
    }

    /// The refusal, unless `logOnly`: `fail` is permanent (5.7.23), `temperror` temporary (4.7.24);
    /// everything else, permerror included (a broken record is the sender's problem), lets the mail on.
    public func reply(logOnly: Bool) -> PolicyReply? {
        guard !logOnly else { return nil }
        switch result {
        case .fail:
            return PolicyReply(code: 550, enhanced: "5.7.23",
                               text: "SPF validation failed: \(shownSender) is not allowed to send from [\(ip)]", why: .spf,
                               wording: wording)
        case .temperror:
            return PolicyReply(code: 451, enhanced: "4.7.24", text: "SPF validation error (temporary), try again later", why: .spf,
                               wording: wording)
        default:
            return nil
        }
    }

    private var shownSender: String { sender.isEmpty ? "postmaster@\(helo)" : sender }

    private var wording: ReplyWording {
        ReplyWording(.spfReject, ["sender": shownSender, "client": ip, "result": result.rawValue])
    }

    /// RFC 7208 §9.1's header, one line; client text in it is the log's escaped form, so it has no CR or LF.
    public func receivedHeader(by host: String) -> String {
        let domain = shownSender.split(separator: "@").last.map(String.init) ?? shownSender
        let comment: String
        switch result {
        case .pass: comment = "domain of \(shownSender) designates \(ip) as permitted sender"
        case .fail: comment = "domain of \(shownSender) does not designate \(ip) as permitted sender"
        case .softfail: comment = "domain of transitioning \(shownSender) does not designate \(ip) as permitted sender"
        case .neutral: comment = "\(ip) is neither permitted nor denied by domain of \(shownSender)"
        case .none: comment = "domain of \(shownSender) does not provide an SPF record"
        case .temperror, .permerror: comment = "error in processing during lookup of \(domain)"
        }
        let line = "Received-SPF: \(result.rawValue) (\(host): \(comment)) client-ip=\(ip); envelope-from=\(shownSender); helo=\(helo);"
        return String(line.utf8.prefix(998)) ?? line
    }
}
