import Testing
@testable import SMTPGateCore

/// A reply no command is waiting for is never passed on as an answer: a lock-step client would read it as
/// the reply to its next command.
@Suite("Replies nobody asked for")
struct UnsolicitedReplyTests {
    static let lost421 = "421 4.4.2 \(PN): destination closed the connection\r\n"
    static let lost451 = "451 4.4.2 \(PN): destination closed the connection\r\n"

    func protocolErrors(_ s: Step) -> [Int] {
        s.events.compactMap { if case .unsolicitedReply(let code, _) = $0 { return code } else { return nil } }
    }

    @Test func aReplyInsideDataIsNotTakenForTheDotsAnswer() {
        // The MTA says 250 after its 354, then refuses the message at the dot: the client sees the refusal.
        let h = Harness()
        h.openInData()
        let early = h.server("250 2.0.0 queued as 12345\r\n")
        #expect(early.toClient.isEmpty)
        #expect(protocolErrors(early) == [250])
        #expect(early.events.contains(.unsolicitedReply(code: 250, text: LogEscape.escape("250 2.0.0 queued as 12345"))))
        let body = h.client("Subject: t\r\n\r\nhello\r\n.\r\n")
        #expect(body.server == "Subject: t\r\n\r\nhello\r\n.\r\n")
        let end = h.server("554 5.7.1 not stored\r\n")
        #expect(end.client == "554 5.7.1 not stored\r\n")
        #expect(end.transactions.map(\.resultCode) == [554])
        #expect(h.all.client.contains("queued") == false)
    }

    @Test func aReplyAfterTheGreetingWaitsForNoCommand() {
        let h = Harness()
        #expect(h.server(Harness.greeting).client == Harness.greeting)
        let extra = h.server("250 ok\r\n")
        #expect(extra.toClient.isEmpty)
        #expect(protocolErrors(extra) == [250])
        h.client("EHLO c.test\r\n")
        let r = h.server(Harness.ehloReply(["PIPELINING"]))
        #expect(r.client == Harness.ehloReply(["PIPELINING"]))
    }

    @Test func anExtraReplyAfterPipelinedCommandsIsDropped() {
        let h = Harness()
        h.open()
        h.client("NOOP\r\nNOOP\r\n")
        let r = h.server("250 a\r\n250 b\r\n250 c\r\n")
        #expect(r.client == "250 a\r\n250 b\r\n")
        #expect(protocolErrors(r) == [250])
        #expect(h.m.phase == .relay)
    }

    @Test func a421WhileIdleEndsTheSessionWithTheProxysOwn421() {
        let h = Harness()
        h.open()
        let s = h.server("421 4.3.2 mx.test going down\r\n")
        #expect(s.client == Self.lost421)
        #expect(s.closeClient && s.closeServer)
        #expect(protocolErrors(s) == [421])
        #expect(h.m.closeReason == "server_closed")
    }

    @Test func a421InsideDataGivesTheMessage451() {
        let h = Harness()
        h.openInData()
        let s = h.server("421 4.4.2 timeout\r\n")
        #expect(s.toClient.isEmpty)
        #expect(s.closeServer)
        let end = h.client("body\r\n.\r\n")
        #expect(end.toServer.isEmpty)
        #expect(end.client == Self.lost451)
        #expect(end.transactions.map(\.resultCode) == [nil])
        #expect(h.client("QUIT\r\n").client == "221 2.0.0 \(PN): closing connection\r\n")
    }

    @Test func aReplyDuringTakeoverIsNotPassedOn() {
        let h = Harness(pipelineSize: 2)
        h.open()
        let s = h.client("NOOP\r\nNOOP\r\nNOOP\r\n")
        #expect(s.takeovers == ["pipeline overflow"])
        #expect(s.server == "NOOP\r\nNOOP\r\nQUIT\r\n")
        let r = h.server("250 a\r\n250 b\r\n221 bye\r\n250 late\r\n")
        #expect(r.client == "250 a\r\n250 b\r\n503 5.0.0 \(PN): pipeline overflow\r\n")
    }

    @Test func theLoggedTextIsEscapedAndBounded() {
        let h = Harness()
        h.openInData()
        let s = h.server("250 " + repeated("\u{1b}", 1000) + "\r\n")
        guard case .unsolicitedReply(_, let text)? = s.events.first else {
            Issue.record("no protocol error event: \(s.events)")
            return
        }
        #expect(!text.contains("\u{1b}"))
        #expect(text == LogEscape.escape("250 " + repeated("\u{1b}", SessionMachine.excerptBytes - 4)))
    }
}
