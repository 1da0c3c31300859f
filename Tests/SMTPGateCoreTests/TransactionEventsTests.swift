import Testing
@testable import SMTPGateCore

@Suite("Transaction events")
struct TransactionEventsTests {
    @Test func fullTransaction() {
        let h = Harness()
        h.open(helo: "client.test")
        h.client("MAIL FROM:<a@x.test> SIZE=100 BODY=8BITMIME\r\nRCPT TO:<b@x.test>\r\n"
            + "RCPT TO:<nobody@x.test> NOTIFY=NEVER\r\nrcpt to: <c@x.test>\r\nDATA\r\n")
        let r = h.server("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n550 5.1.1 unknown user\r\n251 2.1.5 forwarded\r\n354 go\r\n")
        #expect(r.events == [.replied(.mail, code: 250), .replied(.rcpt, code: 250), .replied(.rcpt, code: 550),
                             .replied(.rcpt, code: 251)],
                "each final reply is reported for the rate counters; the transaction waits for its end")
        let body = "Subject: hi\r\n\r\nhello\r\n"
        h.client(body + ".\r\n")
        let done = h.server("250 2.0.0 Ok: queued as ABC\r\n")
        #expect(done.events.count == 2)
        #expect(done.events.first == .replied(.dataEnd, code: 250))
        let expected = Transaction(
            number: 1, helo: "client.test", mailFrom: "<a@x.test>", mailCode: 250,
            recipients: [
                LogRecord.Recipient(address: "<b@x.test>", code: 250),
                LogRecord.Recipient(address: "<nobody@x.test>", code: 550),
                LogRecord.Recipient(address: "<c@x.test>", code: 251),
            ],
            size: b(body).count, resultCode: 250, abort: nil)
        #expect(done.transactions == [expected])
        #expect(h.m.transactions == 1)
        #expect(h.m.helo == "client.test")
    }

    @Test func rejectedMessageHasItsResultCode() {
        let h = Harness()
        h.openInData()
        h.client("spam\r\n.\r\n")
        let r = h.server("554 5.7.1 rejected as spam\r\n")
        #expect(r.transactions.first?.resultCode == 554)
        #expect(r.transactions.first?.abortReason == nil)
        #expect(r.transactions.first?.size == 6)
    }

    @Test func rsetAbortsTheTransaction() {
        let h = Harness()
        h.open()
        h.client("MAIL FROM:<a@x.test>\r\nRCPT TO:<b@x.test>\r\nRSET\r\n")
        let r = h.server("250 ok\r\n250 ok\r\n250 2.0.0 reset\r\n")
        #expect(r.transactions.count == 1)
        let t = r.transactions.first
        #expect(t?.resultCode == nil)
        #expect(t?.abortReason == "rset")
        #expect(t?.recipients == [LogRecord.Recipient(address: "<b@x.test>", code: 250)])
        #expect(t?.size == 0)
    }

    @Test func rejectedRsetDoesNotAbort() {
        let h = Harness()
        h.open()
        h.client("MAIL FROM:<a@x.test>\r\nRSET\r\n")
        let r = h.server("250 ok\r\n500 no\r\n")
        #expect(r.transactions.isEmpty)
    }

    @Test func secondTransactionIsNumberedTwo() {
        let h = Harness()
        h.openInData()
        h.client("one\r\n.\r\n")
        h.server("250 queued\r\n")
        h.client("MAIL FROM:<>\r\nRCPT TO:<c@x.test>\r\nDATA\r\n")
        h.server("250 ok\r\n250 ok\r\n354 go\r\n")
        h.client("two\r\n.\r\n")
        let r = h.server("250 queued\r\n")
        #expect(r.transactions.map(\.number) == [2])
        #expect(r.transactions.first?.mailFrom == "<>")
        #expect(h.m.transactions == 2)
    }

    @Test func rejectedMailIsReportedButNotCounted() {
        let h = Harness()
        h.open()
        h.client("MAIL FROM:<bad@x.test>\r\n")
        let r = h.server("553 5.7.1 sender rejected\r\n")
        #expect(r.transactions.count == 1)
        #expect(r.transactions.first?.mailCode == 553)
        #expect(r.transactions.first?.mailFrom == "<bad@x.test>")
        #expect(r.transactions.first?.resultCode == nil)
        #expect(r.transactions.first?.abortReason == "mail_rejected")
        #expect(r.transactions.count == 1 && r.transactions[0].number == nil, "no transaction began")
        #expect(h.m.transactions == 0)
        h.client("MAIL FROM:<good@x.test>\r\n")
        h.server("250 ok\r\n")
        h.client("RSET\r\n")
        let r2 = h.server("250 ok\r\n")
        #expect(r2.transactions.first?.number == 1)
        #expect(h.m.transactions == 1)
    }

    @Test func newHeloAbortsTheTransaction() {
        let h = Harness()
        h.open()
        h.client("MAIL FROM:<a@x.test>\r\n")
        h.server("250 ok\r\n")
        h.client("EHLO other.test\r\n")
        let r = h.server(Harness.ehloReply(["PIPELINING"]))
        #expect(r.transactions.first?.abortReason == "helo")
        #expect(r.transactions.first?.helo == "client.test")
        #expect(h.m.helo == "other.test")
    }

    @Test func quitAbortsTheTransaction() {
        let h = Harness()
        h.open()
        h.client("MAIL FROM:<a@x.test>\r\nQUIT\r\n")
        let r = h.server("250 ok\r\n221 bye\r\n")
        #expect(r.transactions.first?.abortReason == "quit")
    }

    @Test func rejectedHeloKeepsThePreviousName() {
        let h = Harness()
        h.open(helo: "first.test")
        h.client("HELO second.test\r\n")
        h.server("501 5.5.4 bad name\r\n")
        #expect(h.m.helo == "first.test")
    }

    @Test func clientSuppliedTextIsEscapedInEvents() {
        let h = Harness()
        h.server(Harness.greeting)
        h.client(bytes: b("EHLO evil\rname %s \"q\"\\") + [0xff, 0x00] + b("\r\n"))
        h.server(Harness.ehloReply(["PIPELINING"]))
        #expect(h.m.helo == "evil\\x0dname %s \"q\"\\x5c\\xff\\x00")
        h.client("MAIL FROM:<a b%@x.test>\r\nRCPT TO:<\"x y\"@x.test>\r\nRSET\r\n")
        let r = h.server("250 ok\r\n250 ok\r\n250 ok\r\n")
        // MAIL FROM's path ends at the first space (ESMTP parameters follow it).
        #expect(r.transactions.first?.mailFrom == "<a")
        #expect(r.transactions.first?.recipients.first?.address == "<\"x")
    }

    @Test func pathParsing() {
        #expect(CommandText.path(b("MAIL FROM:<a@b> SIZE=1\r\n"), prefix: "FROM:") == b("<a@b>")[...])
        #expect(CommandText.path(b("mail from: <a@b>\r\n"), prefix: "FROM:") == b("<a@b>")[...])
        #expect(CommandText.path(b("RCPT TO:<c@d>\n"), prefix: "TO:") == b("<c@d>")[...])
        #expect(CommandText.path(b("MAIL <a@b>\r\n"), prefix: "FROM:") == b("<a@b>")[...])
        #expect(CommandText.argument(b("EHLO   host.test  \r\n")) == b("host.test  ")[...])
    }
}
