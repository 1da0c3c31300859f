import Testing
@testable import SMTPGateCore

@Suite("Pipeline overflow and the takeover responder")
struct TakeoverTests {
    /// MAIL accepted, then the upstream drops the connection while RCPT awaits its reply: the RCPT gets
    /// 451 and the proxy answers from then on.
    static func takenOverAfterUpstreamLoss(onTakeoverCmds: Int = 10) -> Harness {
        let h = Harness(onTakeoverCmds: onTakeoverCmds)
        h.open()
        h.client("MAIL FROM:<a@x.test>\r\n")
        h.server("250 2.1.0 Ok\r\n")
        h.client("RCPT TO:<b@x.test>\r\n")
        let s = h.serverClosed()
        #expect(s.client == "451 4.4.2 \(PN): connection to destination lost\r\n")
        #expect(s.takeovers == ["connection to destination lost"])
        #expect(!s.closeClient)
        #expect(s.toServer.isEmpty, "no QUIT to a server that is gone")
        #expect(h.m.phase == .takeover)
        return h
    }

    @Test func overflowAnswers503TakesOverAndQuitsUpstream() {
        let h = Harness(pipelineSize: 2, onTakeoverCmds: 20)
        h.open()
        let s = h.client("NOOP\r\nNOOP\r\nNOOP\r\nRSET\r\nMAIL FROM:<a@x.test>\r\n")
        #expect(s.server == "NOOP\r\nNOOP\r\nQUIT\r\n")
        #expect(s.toClient.isEmpty, "proxy replies wait for the two outstanding server replies")
        #expect(s.takeovers == ["pipeline overflow"])
        #expect(h.m.phase == .takeover)

        let r = h.server("250 2.0.0 one\r\n250 2.0.0 two\r\n221 2.0.0 bye\r\n")
        #expect(r.client == "250 2.0.0 one\r\n250 2.0.0 two\r\n"
            + "503 5.0.0 \(PN): pipeline overflow\r\n"
            + "250 2.0.0 OK\r\n"
            + "451 4.3.0 \(PN): pipeline overflow\r\n")
        #expect(r.closeServer, "the upstream is closed once it answered the proxy's QUIT")
        #expect(!r.closeClient)
        #expect(h.serverClosed().isQuiet)
    }

    @Test func takeoverResponderAnswersEveryVerb() {
        let h = Harness(pipelineSize: 1, onTakeoverCmds: 50)
        h.open()
        h.client("NOOP\r\nNOOP\r\n")
        let r = h.server("250 2.0.0 one\r\n221 2.0.0 bye\r\n")
        #expect(r.client == "250 2.0.0 one\r\n503 5.0.0 \(PN): pipeline overflow\r\n")
        let reason = "pipeline overflow"
        let cases: [(String, String)] = [
            ("NOOP", "250 2.0.0 OK"), ("noop", "250 2.0.0 OK"), ("RSET", "250 2.0.0 OK"),
            ("HELO again.test", "250 \(PN)"), ("EHLO again.test", "250 \(PN)"),
            ("MAIL FROM:<a@x.test>", "451 4.3.0 \(PN): \(reason)"),
            ("RCPT TO:<b@x.test>", "503 5.5.1 \(PN): \(reason)"),
            ("DATA", "503 5.5.1 \(PN): \(reason)"),
            ("VRFY x", "502 5.5.1 \(PN): \(reason)"), ("STARTTLS", "502 5.5.1 \(PN): \(reason)"),
            ("AUTH LOGIN", "502 5.5.1 \(PN): \(reason)"), ("BDAT 0 LAST", "502 5.5.1 \(PN): \(reason)"),
            ("XYZZY", "502 5.5.1 \(PN): \(reason)"),
        ]
        for (cmd, reply) in cases {
            let s = h.client("\(cmd)\r\n")
            #expect(s.client == reply + "\r\n", "\(cmd)")
            #expect(s.toServer.isEmpty, "\(cmd)")
            #expect(!s.closeClient, "\(cmd)")
        }
        // AUTH in takeover did not start a SASL exchange, and DATA did not start a body.
        let q = h.client("QUIT\r\n")
        #expect(q.client == "221 2.0.0 \(PN): closing connection\r\n")
        #expect(q.closeClient)
        #expect(h.m.phase == .closed)
    }

    @Test func pipelinedCommandsInTakeoverAreAnsweredInOrder() {
        let h = TakeoverTests.takenOverAfterUpstreamLoss()
        let s = h.client("NOOP\r\nmail from:<x@y.test>\r\nQUIT\r\nNOOP\r\n")
        #expect(s.client == "250 2.0.0 OK\r\n451 4.3.0 \(PN): connection to destination lost\r\n"
            + "221 2.0.0 \(PN): closing connection\r\n")
        #expect(s.closeClient)
    }

    @Test func quitInTakeoverWaitsBehindTheProxysQuit() {
        let h = Harness(pipelineSize: 1)
        h.open()
        let s = h.client("NOOP\r\nNOOP\r\nQUIT\r\n")
        #expect(s.server == "NOOP\r\nQUIT\r\n")
        let r1 = h.server("250 2.0.0 one\r\n")
        #expect(r1.client == "250 2.0.0 one\r\n")
        #expect(!r1.closeClient)
        let r2 = h.server("221 2.0.0 bye\r\n")
        #expect(r2.client == "503 5.0.0 \(PN): pipeline overflow\r\n221 2.0.0 \(PN): closing connection\r\n")
        #expect(r2.closeClient && r2.closeServer)
    }

    @Test func takeoverCommandLimit() {
        let h = TakeoverTests.takenOverAfterUpstreamLoss(onTakeoverCmds: 3)
        for _ in 0..<3 {
            let s = h.client("NOOP\r\n")
            #expect(s.client == "250 2.0.0 OK\r\n")
            #expect(!s.closeClient)
        }
        let s = h.client("NOOP\r\n")
        #expect(s.client == "554 5.7.0 \(PN): too many commands after session takeover\r\n")
        #expect(s.closeClient)
        #expect(h.m.phase == .closed)
        #expect(h.client("NOOP\r\n").isQuiet)
    }

    @Test func takeoverCommandLimitWithinOnePacket() {
        let h = TakeoverTests.takenOverAfterUpstreamLoss(onTakeoverCmds: 2)
        let s = h.client("NOOP\r\nRSET\r\nNOOP\r\nNOOP\r\nQUIT\r\n")
        #expect(s.client == "250 2.0.0 OK\r\n250 2.0.0 OK\r\n"
            + "554 5.7.0 \(PN): too many commands after session takeover\r\n")
        #expect(s.closeClient)
    }

    @Test func zeroTakeoverCommandsClosesOnTheFirst() {
        let h = TakeoverTests.takenOverAfterUpstreamLoss(onTakeoverCmds: 0)
        let s = h.client("NOOP\r\n")
        #expect(s.client == "554 5.7.0 \(PN): too many commands after session takeover\r\n")
        #expect(s.closeClient)
    }

    /// The close line's reason is why the session ended (the integration test `test_takeover_command_limit`
    /// expects `reason=takeover_limit closed_by=proxy` after an upstream-loss takeover).
    @Test func takeoverLimitIsTheCloseReason() {
        let h = TakeoverTests.takenOverAfterUpstreamLoss(onTakeoverCmds: 1)
        h.client("NOOP\r\nNOOP\r\n")
        #expect(h.m.phase == .closed)
        #expect(h.m.closeReason == "takeover_limit")
        #expect(h.m.closedBy == .proxy)
    }

    @Test func sessionTimeoutInTakeover() {
        let h = TakeoverTests.takenOverAfterUpstreamLoss()
        let s = h.timedOut()
        #expect(s.client == "421 4.4.2 \(PN): session timeout\r\n")
        #expect(s.closeClient)
        #expect(s.toServer.isEmpty)
        #expect(h.m.phase == .closed)
    }

    /// Integration test `test_takeover_session_timeout` expects `reason=session_timeout closed_by=proxy`.
    @Test func sessionTimeoutIsTheCloseReason() {
        let h = TakeoverTests.takenOverAfterUpstreamLoss()
        h.timedOut()
        #expect(h.m.closeReason == "session_timeout")
        #expect(h.m.closedBy == .proxy)
    }

    @Test func sessionTimeoutWhileTheProxysQuitIsUnanswered() {
        let h = Harness(pipelineSize: 1)
        h.open()
        h.client("NOOP\r\nNOOP\r\n")
        let s = h.timedOut()
        #expect(s.client == "421 4.4.2 \(PN): session timeout\r\n")
        #expect(s.closeClient && s.closeServer)
        #expect(s.toServer.isEmpty, "QUIT was already sent once")
    }

    @Test func takeoverRepliesWithoutEnhancedCodesAfterHELO() {
        let h = Harness(pipelineSize: 1)
        h.openHELO()
        let s = h.client("NOOP\r\nNOOP\r\nMAIL FROM:<a@x.test>\r\nNOOP\r\nVRFY x\r\n")
        #expect(s.server == "NOOP\r\nQUIT\r\n")
        let r = h.server("250 ok\r\n221 bye\r\n")
        #expect(r.client == "250 ok\r\n503 \(PN): pipeline overflow\r\n451 \(PN): pipeline overflow\r\n"
            + "250 OK\r\n502 \(PN): pipeline overflow\r\n")
        let q = h.client("QUIT\r\n")
        #expect(q.client == "221 \(PN): closing connection\r\n")
    }

    @Test func upstreamLossWhileTheProxysQuitIsUnansweredStillAnswersEveryCommand() {
        let h = Harness(pipelineSize: 2)
        h.open()
        h.client("NOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\n")
        let s = h.serverClosed()
        #expect(s.client == "451 4.4.2 \(PN): connection to destination lost\r\n"
            + "451 4.4.2 \(PN): connection to destination lost\r\n"
            + "503 5.0.0 \(PN): pipeline overflow\r\n250 2.0.0 OK\r\n")
        #expect(!s.closeClient)
        #expect(h.m.phase == .takeover)
    }

    @Test func clientCloseInTakeoverEndsTheSession() {
        let h = TakeoverTests.takenOverAfterUpstreamLoss()
        let s = h.clientClosed()
        #expect(s.closeClient)
        #expect(s.toClient.isEmpty)
        #expect(s.toServer.isEmpty)
        #expect(h.m.phase == .closed)
    }
}

extension Step {
    /// Nothing written, nothing closed, no events.
    var isQuiet: Bool {
        toServer.isEmpty && toClient.isEmpty && events.isEmpty && !closeClient && !closeServer && !goBlind
    }

    @Test(arguments: ["shutdown", "clientClosed", "timedOut"])
    func theProxysQUITNeverLandsInsideARelayedLine(how: String) {
        // Found by fuzzing: a command line longer than maxCommandLine is relayed in part before its LF; a QUIT
        // written then would end it and make one mangled command of both.
        let h = Harness()
        h.open()
        let partial = "MAIL FROM:<s@x.test> " + repeated("p", h.settings.maxCommandLine + 10)
        let s = h.client(partial)
        #expect(s.server == partial)
        let end: Step
        switch how {
        case "shutdown": end = h.shutdown()
        case "clientClosed": end = h.clientClosed()
        default: end = h.timedOut()
        }
        #expect(!end.server.contains("QUIT"), "\(how): \(end.server.suffix(20).debugDescription)")
    }
}
