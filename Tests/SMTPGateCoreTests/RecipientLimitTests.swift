import Testing
@testable import SMTPGateCore

@Suite("max_recipients and address length bounds")
struct RecipientLimitTests {
    static let tooMany = "452 4.5.3 \(PN): Too many recipients\r\n"

    func limited(_ n: Int) -> Harness {
        let h = Harness { $0.maxRecipients = n }
        h.open()
        h.client("MAIL FROM:<a@x.test>\r\n")
        h.server("250 2.1.0 Ok\r\n")
        return h
    }

    func rcpt(_ h: Harness, _ i: Int, reply: String = "250 2.1.5 Ok\r\n") -> Step {
        var s = h.client("RCPT TO:<r\(i)@x.test>\r\n")
        if !s.toServer.isEmpty { s.merge(h.server(reply)) }
        return s
    }

    @Test func recipientsBeyondTheLimitGet452AndAreNotRelayed() {
        let h = limited(3)
        for i in 1...3 {
            let s = rcpt(h, i)
            #expect(s.server == "RCPT TO:<r\(i)@x.test>\r\n")
            #expect(s.client == "250 2.1.5 Ok\r\n")
        }
        let over = rcpt(h, 4)
        #expect(over.toServer.isEmpty)
        #expect(over.client == Self.tooMany)
        #expect(over.events == [.limitReached(limit: "max_recipients", value: 3)])
        // Logged once per transaction, and the client goes on with the recipients it has (RFC 5321 4.5.3.1.10).
        let again = rcpt(h, 5)
        #expect(again.client == Self.tooMany)
        #expect(again.events.isEmpty)
        let d = h.client("DATA\r\n")
        #expect(d.server == "DATA\r\n")
    }

    @Test func refusedRecipientsDoNotCountAgainstTheLimit() {
        let h = limited(2)
        #expect(rcpt(h, 1, reply: "550 5.1.1 no such user\r\n").client == "550 5.1.1 no such user\r\n")
        #expect(rcpt(h, 2).client == "250 2.1.5 Ok\r\n")
        #expect(rcpt(h, 3).client == "250 2.1.5 Ok\r\n")
        #expect(rcpt(h, 4).client == Self.tooMany)
    }

    @Test func aNewTransactionStartsTheCountAgain() {
        let h = limited(1)
        _ = rcpt(h, 1)
        #expect(rcpt(h, 2).client == Self.tooMany)
        h.client("RSET\r\n")
        h.server("250 2.0.0 Ok\r\n")
        h.client("MAIL FROM:<a@x.test>\r\n")
        h.server("250 2.1.0 Ok\r\n")
        let s = rcpt(h, 3)
        #expect(s.server == "RCPT TO:<r3@x.test>\r\n")
        #expect(s.client == "250 2.1.5 Ok\r\n")
        #expect(rcpt(h, 4).events == [.limitReached(limit: "max_recipients", value: 1)])
    }

    @Test func pipelinedRecipientsKeepTheirReplyOrder() {
        let h = limited(2)
        let s = h.client("RCPT TO:<1@x>\r\nRCPT TO:<2@x>\r\nRCPT TO:<3@x>\r\nDATA\r\n")
        #expect(s.server == "RCPT TO:<1@x>\r\nRCPT TO:<2@x>\r\nDATA\r\n")
        #expect(s.toClient.isEmpty)
        let r = h.server("250 2.1.5 a\r\n250 2.1.5 b\r\n354 go\r\n")
        #expect(r.client == "250 2.1.5 a\r\n250 2.1.5 b\r\n" + Self.tooMany + "354 go\r\n")
    }

    @Test func theLogKeepsTheFirstRecipientsAndCountsThemAll() {
        let h = limited(200)
        for i in 1...120 { _ = rcpt(h, i, reply: i % 2 == 0 ? "250 2.1.5 Ok\r\n" : "550 5.1.1 no\r\n") }
        h.client("RSET\r\n")
        let s = h.server("250 2.0.0 Ok\r\n")
        let t = try! #require(s.transactions.first)
        #expect(t.recipientCount == 120)
        #expect(t.recipients.count == Transaction.recipientsKept)
        #expect(t.recipients.first == LogRecord.Recipient(address: "<r1@x.test>", code: 550))
        let line = LogFormat.text.render(SessionLog.eventLine(.transaction(t), LogFormatTests.ctx, policy: LogPolicy(config: Config())),
                                         timestamp: "T", program: "smtpgate", pid: 1)
        #expect(line.contains(" rcpts=120 rcpts_unlisted=70 "))
        #expect(line.components(separatedBy: " rcpt=").count - 1 == Transaction.recipientsKept)
    }

    @Test func aHostileTransactionStaysSmall() {
        // The case: 12,000 RCPT TO of 10 KB each. None is a path RFC 5321 allows, none is relayed,
        // and what the machine holds for the log stays at the kept recipients.
        let h = limited(1000)
        let long = repeated("x", 10_000)
        for _ in 0..<12_000 {
            let s = h.client("RCPT TO:<\(long)@x.test>\r\n")
            #expect(s.toServer.isEmpty)
            #expect(s.client == "501 5.1.3 \(PN): recipient address too long (at most 256 octets)\r\n")
        }
        h.client("QUIT\r\n")
        let q = h.server("221 2.0.0 Bye\r\n")
        let t = try! #require(q.transactions.first)
        #expect(t.recipientCount == 0)
    }

    @Test func pathLengthsAtTheBoundAreRelayed() {
        let h = limited(10)
        let local = repeated("l", 256 - "<@x.test>".count)
        let ok = h.client("RCPT TO:<\(local)@x.test>\r\n")
        #expect(ok.server == "RCPT TO:<\(local)@x.test>\r\n")
        h.server("250 2.1.5 Ok\r\n")
        let over = h.client("RCPT TO:<\(local)l@x.test> NOTIFY=NEVER\r\n")
        #expect(over.toServer.isEmpty)
        #expect(over.client == "501 5.1.3 \(PN): recipient address too long (at most 256 octets)\r\n")
        let mail = h.client("MAIL FROM:<\(local)ll@x.test> SIZE=10\r\n")
        #expect(mail.toServer.isEmpty)
        #expect(mail.client == "501 5.1.7 \(PN): sender address too long (at most 256 octets)\r\n")
    }

    @Test func aRecipientLongerThanACommandLineIsRefusedAndItsRestSwallowed() {
        let h = limited(10)
        let s = h.client("RCPT TO:<" + repeated("y", h.settings.maxCommandLine + 100) + "@x.test>\r\nNOOP\r\n")
        #expect(s.server == "NOOP\r\n")
        #expect(s.client == "501 5.1.3 \(PN): recipient address too long (at most 256 octets)\r\n")
    }

    @Test func maxRecipientsIsReadFromTheConfiguration() throws {
        let c = try ConfigParser.parse("mode fixed\nfixed_server 127.0.0.1\nmax_recipients 25\n", file: "t.conf")
        #expect(SessionSettings(config: c, hostName: "h").maxRecipients == 25)
        #expect(SessionSettings(config: Config(), hostName: "h").maxRecipients == 1000)
        #expect(throws: ConfigError.self) { try ConfigParser.parse("max_recipients 0\n", file: "t.conf") }
    }
}
