import Testing
@testable import SMTPGateCore

/// smtp-gated's `msg_*` texts: a configured one replaces the text of its replies, never their codes.
@Suite("msg_* reply texts")
struct ReplyTextTests {
    static func parse(_ lines: String) throws -> Config {
        try ConfigParser.parse("mode fixed\nfixed_server 192.0.2.25\n" + lines, file: "t.conf")
    }

    static func replies(_ lines: String) throws -> ProxyReplies {
        ProxyReplies(proxyName: "gw", texts: try parse(lines).replyTexts)
    }

    static func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

    @Test func aTemplateReadsItsVariablesInBothFormsAndADoubleDollar() throws {
        let t = try ReplyTemplate(parsing: "Malware $virus found (${virus}x) costs $$5", for: .virusFound)
        #expect(t.render(["virus": "Eicar-Test"]) == "Malware Eicar-Test found (Eicar-Testx) costs $5")
        #expect(t.render([:]) == "Malware - found (-x) costs $5")
    }

    @Test(arguments: [
        ("msg_virus_found found $name", "msg_virus_found has no variable $name (known: $virus)"),
        ("msg_sign_off bye $virus", "msg_sign_off has no variable $virus (it has none)"),
        ("msg_virus_found costs $5", "'$' at column 7 starts no variable; write $$ for a dollar sign"),
        ("msg_virus_found end $", "'$' at column 5 starts no variable; write $$ for a dollar sign"),
        ("msg_virus_found a ${virus b", "'${' at column 3 is not closed by '}' after a variable name"),
        ("msg_spam_found caf\u{e9}", "expected reply text of printable ASCII, 1 to 300 characters, got 'caf\u{e9}'"),
        ("msg_spam_found " + String(repeating: "x", count: 301), "expected reply text of printable ASCII, 1 to 300 characters"),
    ])
    func badTextsAreRefusedWithTheReason(_ line: String, _ message: String) {
        #expect {
            _ = try Self.parse(line + "\n")
        } throws: { e in
            guard let e = e as? ConfigError else { return false }
            return e.line == 3 && e.message.contains(message)
        }
    }

    @Test func whatAVariableBringsInIsPrintableAndBounded() throws {
        let t = try ReplyTemplate(parsing: "refused: $sender", for: .spfReject)
        #expect(t.render(["sender": "a\r\n250 ok\u{7f}\u{e9}"]) == "refused: a??250 ok??")
        let long = t.render(["sender": String(repeating: "y", count: 500)])
        #expect(long == "refused: " + String(repeating: "y", count: ReplyTemplate.maxValue))
        let many = try ReplyTemplate(parsing: String(repeating: "$sender", count: 40), for: .spfReject)
        #expect(many.render(["sender": String(repeating: "z", count: 100)]).utf8.count == ReplyTemplate.maxRendered)
    }

    @Test func theTextIsReplacedAndTheCodesStay() throws {
        let r = try Self.replies("""
            msg_virus_found Malware found ($virus)
            msg_max_per_host Too many connections from your host (at most $limit)
            msg_dnsdb_reject Connection rejected due to DNSBL $zone
            msg_auth_required Message denied without authorization
            msg_unimpl_command $command is not implemented
            msg_transaction_failed Transaction failed: $reason

            """)
        #expect(Self.text(r.render(ProxyReplies.virusFound("Eicar-Signature"))) == "550 5.7.1 gw: Malware found (Eicar-Signature)\r\n")
        #expect(Self.text(r.render(ProxyReplies.tooManyFromHost(limit: 3))) == "554 5.7.0 gw: Too many connections from your host (at most 3)\r\n")
        let v = DNSBLVerdict(client: "10.77.1.2", score: 3, threshold: 1, zones: ["bl.test"], heaviest: "bl.test", failed: [])
        // A blocklist's reply stays the site's: without the proxy's name, as Postfix writes it.
        #expect(Self.text(r.render(ProxyReplies.dnsblListed(v))) == "554 5.7.1 Connection rejected due to DNSBL bl.test\r\n")
        #expect(Self.text(r.render(ProxyReplies.dnsblListedAtMail(v).proxyReply)) == "554 5.7.1 Connection rejected due to DNSBL bl.test\r\n")
        #expect(Self.text(r.render(ProxyReplies.authRequired.proxyReply)) == "530 5.7.0 gw: Message denied without authorization\r\n")
        #expect(Self.text(r.render(ProxyReplies.bdatUnsupported)) == "502 5.5.1 gw: BDAT is not implemented\r\n")
        #expect(Self.text(r.render(ProxyReplies.destinationLost("idle timeout of the destination", transactionOpen: true)))
                == "451 4.4.2 gw: Transaction failed: idle timeout of the destination\r\n")
        // Not configured: the proxy's own text.
        #expect(Self.text(r.render(ProxyReplies.tooManyConnections(limit: 9))) == "554 5.7.0 gw: too many connections (max_connections 9)\r\n")
        var plain = r
        plain.enhanced = false
        #expect(Self.text(plain.render(ProxyReplies.virusFound("X"))) == "550 gw: Malware found (X)\r\n")
    }

    @Test func aRateLimitTakesItsOwnTextThenTheGeneralOne() throws {
        let both = try Self.replies("msg_rate_reject Rejected due to rate ($option)\nmsg_ratelimit_messages $count messages in $seconds s, at most $limit\n")
        let messages = RateExceeded(kind: .messages, window: RateWindow(limit: 5, seconds: 60), count: 6)
        let bytes = RateExceeded(kind: .bytes, window: RateWindow(limit: 1000, seconds: 3600), count: 1200)
        #expect(Self.text(both.render(ProxyReplies.rateLimited(messages).proxyReply)) == "451 4.7.1 gw: 6 messages in 60 s, at most 5\r\n")
        #expect(Self.text(both.render(ProxyReplies.rateLimited(bytes).proxyReply)) == "451 4.7.1 gw: Rejected due to rate (ratelimit_bytes)\r\n")
        #expect(Self.text(both.render(ProxyReplies.rateLimitedAtConnect(bytes))) == "421 4.7.0 gw: Rejected due to rate (ratelimit_bytes)\r\n")
        let general = try Self.replies("msg_rate_reject slow down\n")
        #expect(Self.text(general.render(ProxyReplies.rateLimited(messages).proxyReply)) == "451 4.7.1 gw: slow down\r\n")
        let none = try Self.replies("")
        #expect(Self.text(none.render(ProxyReplies.rateLimited(messages).proxyReply)).hasPrefix("451 4.7.1 gw: rate limit reached, try again later (6 messages"))
    }

    @Test func everyReplyTextHasItsOptionAndReadsBack() throws {
        let lines = ReplyText.allCases.map { key in
            "\(key.optionName) text for \(key.rawValue)" + key.variables.map { " $" + $0 }.joined()
        }.joined(separator: "\n") + "\n"
        let c = try Self.parse(lines)
        #expect(c.replyTexts.count == ReplyText.allCases.count)
        let rendered = ConfigParser.render(c)
        #expect(rendered.contains("\nmsg_virus_found text for virus_found $virus\n"))
        #expect(try ConfigParser.parse(rendered, file: "again") == c)
        #expect(ConfigParser.render(try Self.parse("")).contains("# msg_virus_found (not set)\n"))
        // Per listener, as the other texts of a session.
        let f = try ConfigParser.parseFile(bytes: Array("""
            msg_sign_off Bye

            [listener a]
            mode fixed
            fixed_server 192.0.2.25
            msg_sign_off Goodbye

            [listener b]
            mode fixed
            fixed_server 192.0.2.25
            port 9200

            """.utf8), file: "s.conf")
        #expect(f.listener(named: "a")?.config.replyTexts[.signOff]?.source == "Goodbye")
        #expect(f.listener(named: "b")?.config.replyTexts[.signOff]?.source == "Bye")
    }

    @Test func smtpGatedsTextsWithoutAReplyHereLoadAndSayWhy() throws {
        let f = try ConfigParser.parseFile(bytes: Array("""
            mode fixed
            fixed_server 192.0.2.25
            msg_hello SMTP Proxy, hello
            msg_lookup_timeout Lookup timeout

            """.utf8), file: "sg.conf")
        let w = ConfigParser.warnings(f)
        #expect(w.contains("msg_hello has no effect in SMTPGate: this proxy never sends that reply: the client always hears the destination MTA's own greeting"))
        #expect(w.contains { $0.hasPrefix("msg_lookup_timeout has no effect in SMTPGate: this proxy never sends that reply: every lookup failure is answered with msg_lookup_failed") })
        #expect {
            _ = try ConfigParser.parseFile(bytes: Array("mode fixed\nfixed_server 192.0.2.25\nmsg_hello caf\u{e9}\n".utf8), file: "sg.conf")
        } throws: { e in (e as? ConfigError)?.line == 3 }
    }
}
