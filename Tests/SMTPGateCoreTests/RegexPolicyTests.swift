import Testing
@testable import SMTPGateCore

/// `regex_reject_*` / `regex_enforce_*`: PCRE2 patterns, their options, their verdicts, and hostile input.
@Suite("regex_* rules")
struct RegexPolicyTests {
    static let base = "mode fixed\nfixed_server 192.0.2.25\n"

    func parse(_ lines: String) throws -> Config {
        try ConfigParser.parse(Self.base + lines, file: "t.conf")
    }

    func rule(_ a: RegexRule.Action, _ f: RegexRule.Field, _ p: String) throws -> RegexRule {
        RegexRule(action: a, field: f, regex: try PCRERegex(p))
    }

    @Test func patternsArePerlsAndCaseless() throws {
        let r = try PCRERegex(#"^(\d{1,3}[.-]){3}\d{1,3}\.dyn\.example$"#)
        #expect(r.match("10-1-2-3.DYN.example".utf8) == .match)
        #expect(r.match("mail.example".utf8) == .noMatch)
        #expect(try PCRERegex("(?-i)^ABC$").match("abc".utf8) == .noMatch, "(?-i) turns case back on")
        #expect(try PCRERegex("^$").match("".utf8) == .match, "the null sender is the empty subject")
        #expect(try PCRERegex("a\\x00b").match([0x61, 0, 0x62]) == .match, "matching is by bytes")
        #expect(try PCRERegex("^.{3}$").match([0xff, 0xfe, 0x80]) == .match, "invalid UTF-8 is just bytes")
    }

    @Test func aPatternThatBacktracksWithoutEndStopsAtTheLimitInsteadOfStalling() throws {
        let r = try PCRERegex("^(a+)+$")
        let hostile = Array(repeating: UInt8(ascii: "a"), count: 5_000) + [UInt8(ascii: "!")]
        let clock = ContinuousClock()
        var result = PCRERegex.Result.match
        let took = clock.measure { result = r.match(hostile) }
        guard case .failed(let why) = result else {
            Issue.record("expected a limit, got \(result)")
            return
        }
        #expect(why.contains("limit"), "\(why)")
        #expect(took < .seconds(2), "\(took)")
    }

    @Test(arguments: [
        ("regex_reject_helo (", "missing closing parenthesis at offset 1"),
        ("regex_enforce_mail_from [a-", "missing terminating ]"),
        ("regex_reject_rcpt_to a{2,1}", "out of order"),
    ])
    func badPatternsAreErrorsOnTheirLine(_ line: String, _ words: String) {
        #expect {
            try parse(line + "\n")
        } throws: { e in
            let t = String(describing: e)
            return t.contains("t.conf:3") && t.contains("bad regular expression") && t.contains(words)
        }
    }

    @Test func anOverlongPatternIsRefusedAndControlBytesInTheErrorAreEscaped() {
        #expect(throws: (any Error).self) { try parse("regex_reject_helo " + String(repeating: "a", count: 5000) + "\n") }
        #expect {
            try parse("regex_reject_helo (\u{1b}[2J\n")
        } throws: { e in !String(describing: e).contains("\u{1b}") }
    }

    @Test func optionsKeepTableOrderReadBackAndEachIsSetOnce() throws {
        #expect(throws: (any Error).self) { try parse("regex_reject_helo ^localhost$\nregex_reject_helo ^unknown$\n") }
        let c = try parse("regex_enforce_mail_from @example\\.com$\nregex_reject_helo ^unknown$\n"
            + "regex_reject_rcpt_to ^postmaster@ with spaces$\n")
        #expect(c.regexRules.map(\.optionName) == ["regex_reject_helo", "regex_reject_rcpt_to", "regex_enforce_mail_from"])
        #expect(c.regexRules[0].regex.pattern == "^unknown$")
        #expect(c.regexRules[1].regex.pattern == "^postmaster@ with spaces$", "the value is the rest of the line")
        let lines = ConfigParser.render(c).split(separator: "\n").filter { $0.hasPrefix("regex_") }
        let again = try parse(lines.joined(separator: "\n") + "\n")
        #expect(again.regexRules == c.regexRules)
        #expect(ConfigParser.render(try parse("")).contains("# regex_reject_helo (not set)"))
    }

    @Test func warningsNameRegexWordsThatChangeNothing() throws {
        #expect(ConfigParser.warnings(try parse("auth_skip regex\n"))
            == ["auth_skip names regex but no regex_* option is set: it changes nothing"])
        #expect(ConfigParser.warnings(try parse("auth_skip regex\nregex_reject_helo ^x$\n")).isEmpty)
    }

    @Test func rejectRefusesAMatchAndEnforceRefusesAMiss() throws {
        let p = RegexPolicy(rules: [
            try rule(.reject, .helo, "^(localhost|unknown)$"),
            try rule(.reject, .mailFrom, "^$"),
            try rule(.enforce, .mailFrom, "@customer\\.example$"),
            try rule(.reject, .rcptTo, "^abuse@"),
        ])
        #expect(p.verdict(.hello(name: "LocalHost")) == .refuse(p.rules[0]))
        #expect(p.verdict(.hello(name: "pc1.customer.example")) == .pass)
        #expect(p.verdict(.mail(from: "<>")) == .refuse(p.rules[1]), "the null sender, without brackets, is empty")
        #expect(p.verdict(.mail(from: "<a@elsewhere.example>")) == .refuse(p.rules[2]))
        #expect(p.verdict(.mail(from: "<a@customer.example>")) == .pass)
        #expect(p.verdict(.rcpt(to: "<abuse@x.example>")) == .refuse(p.rules[3]))
        #expect(p.verdict(.rcpt(to: "<bob@x.example>")) == .pass)
        #expect(p.verdict(.data) == .pass && p.verdict(.endOfData(size: 3)) == .pass)
    }

    @Test func aLimitIsATemporaryRefusalNamingTheRule() throws {
        let p = RegexPolicy(rules: [try rule(.reject, .helo, "^(a+)+$")])
        let v = p.verdict(.hello(name: String(repeating: "a", count: 3000) + "!"))
        guard case .failed(let r, _) = v else {
            Issue.record("expected failed, got \(v)")
            return
        }
        #expect(r.optionName == "regex_reject_helo")
        let reply = try #require(RegexPolicy.reply(v))
        #expect(reply.code == 451 && reply.enhanced == "4.3.0" && reply.why == .regexFailed)
    }

    @Test func repliesSayWhatWasRefused() throws {
        let texts = try [RegexRule.Field.helo, .mailFrom, .rcptTo].map { f in
            try #require(RegexPolicy.reply(.refuse(try rule(.reject, f, "x")))).text
        }
        #expect(texts == ["HELO name rejected by policy", "sender address rejected by policy", "recipient address rejected by policy"])
        #expect(RegexPolicy.reply(.pass) == nil)
        #expect(Finding.Kind.regex(rule: "regex_reject_helo").lockCause == .regex)
    }
}
