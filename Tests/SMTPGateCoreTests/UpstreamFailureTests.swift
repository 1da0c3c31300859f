import Testing
@testable import SMTPGateCore

@Suite("Upstream loss, timeouts, shutdown and client close")
struct UpstreamFailureTests {
    static let lost421 = "421 4.4.2 \(PN): connection to destination lost\r\n"
    static let lost451 = "451 4.4.2 \(PN): connection to destination lost\r\n"

    // MARK: upstream closes

    @Test func upstreamClosesWithNothingPending() {
        let h = Harness()
        h.open()
        let s = h.serverClosed()
        #expect(s.client == UpstreamFailureTests.lost421)
        #expect(s.closeClient && s.closeServer)
        #expect(s.toServer.isEmpty, "no QUIT to a closed upstream")
        #expect(h.m.closeReason == "server_closed")
        #expect(h.m.closedBy == .server)
        #expect(h.m.phase == .closed)
        #expect(h.client("NOOP\r\n").isQuiet)
    }

    @Test func upstreamClosesWithACommandPending() {
        let h = Harness()
        h.open()
        h.client("NOOP\r\n")
        let s = h.serverClosed()
        #expect(s.client == UpstreamFailureTests.lost421)
        #expect(s.closeClient)
        #expect(h.m.closeReason == "server_closed")
        #expect(h.m.closedBy == .server)
    }

    @Test func upstreamClosesBeforeGreeting() {
        let h = Harness()
        let s = h.serverClosed()
        #expect(s.client == UpstreamFailureTests.lost421)
        #expect(s.closeClient)
    }

    @Test func upstreamClosesWithPendingMailNotYetAccepted() {
        let h = Harness()
        h.open()
        h.client("MAIL FROM:<a@x.test>\r\nRCPT TO:<b@x.test>\r\n")
        let s = h.serverClosed()
        // No transaction is open yet (MAIL not accepted): one 421, then close.
        #expect(s.client == UpstreamFailureTests.lost421)
        #expect(s.closeClient)
    }

    @Test func upstreamClosesWithPendingRcptsAfterMailAccepted() {
        let h = Harness()
        h.open()
        h.client("MAIL FROM:<a@x.test>\r\n")
        h.server("250 2.1.0 Ok\r\n")
        let c = h.client("RCPT TO:<b@x.test>\r\nRCPT TO:<c@x.test>\r\nDATA\r\nSubject: x\r\n")
        #expect(c.server == "RCPT TO:<b@x.test>\r\nRCPT TO:<c@x.test>\r\nDATA\r\n")
        let s = h.serverClosed()
        let l = UpstreamFailureTests.lost451
        // One 451 for each command awaiting a reply; the line held behind DATA is then a takeover command.
        #expect(s.client == l + l + l + "502 5.5.1 \(PN): connection to destination lost\r\n")
        #expect(!s.closeClient)
        #expect(s.takeovers == ["connection to destination lost"])
        #expect(s.transactions.count == 1)
        #expect(s.transactions.first?.resultCode == nil)
        #expect(s.transactions.first?.abortReason == "server_closed")
        #expect(h.m.phase == .takeover)
    }

    @Test func upstreamClosesMidDataBodyIsSwallowedAndClientGets451() {
        let h = Harness()
        h.openInData()
        #expect(h.client("part one\r\n").server == "part one\r\n")
        let lost = h.serverClosed()
        #expect(lost.toClient.isEmpty, "the client is still sending its body: nothing to answer yet")
        #expect(!lost.closeClient)
        #expect(lost.takeovers == ["connection to destination lost"])
        #expect(lost.transactions.isEmpty, "logged when the body ends")

        let more = h.client("QUIT\r\nMAIL FROM:<evil@x.test>\r\nmore body\r\n")
        #expect(more.isQuiet, "body lines are swallowed, not commands")
        let end = h.client(".\r\n")
        #expect(end.client == UpstreamFailureTests.lost451)
        #expect(!end.client.contains("250"))
        #expect(end.toServer.isEmpty)
        #expect(end.transactions.count == 1)
        let t = end.transactions.first
        #expect(t?.resultCode == nil)
        #expect(t?.abortReason == "destination_lost")
        #expect(t?.size == b("part one\r\nQUIT\r\nMAIL FROM:<evil@x.test>\r\nmore body\r\n").count)

        #expect(h.client("NOOP\r\n").client == "250 2.0.0 OK\r\n")
        let q = h.client("QUIT\r\n")
        #expect(q.client == "221 2.0.0 \(PN): closing connection\r\n")
        #expect(q.closeClient)
    }

    @Test func upstreamClosesMidDataWithTerminatorSplit() {
        let h = Harness()
        h.openInData()
        h.client("abc\r")
        h.serverClosed()
        #expect(h.client("\n.").isQuiet)
        #expect(h.client("\r").isQuiet)
        #expect(h.client("\n").client == UpstreamFailureTests.lost451)
    }

    @Test func upstreamClosesAfterTheFinalDot() {
        let h = Harness()
        h.openInData()
        h.client("body\r\n.\r\nQUIT\r\n")
        let s = h.serverClosed()
        #expect(s.client == UpstreamFailureTests.lost451 + "221 2.0.0 \(PN): closing connection\r\n")
        #expect(s.closeClient)
        #expect(s.transactions.first?.resultCode == nil)
        #expect(s.transactions.first?.size == 6)
        #expect(!s.client.contains("250"))
    }

    @Test func upstreamClosesWhileDataAwaits354() {
        let h = Harness()
        h.open()
        h.client("MAIL FROM:<a@x.test>\r\nRCPT TO:<b@x.test>\r\n")
        h.server("250 ok\r\n250 ok\r\n")
        h.client("DATA\r\n")
        let s = h.serverClosed()
        #expect(s.client == UpstreamFailureTests.lost451)
        #expect(!s.closeClient)
        #expect(h.m.phase == .takeover)
    }

    @Test func quitThenUpstreamCloseWritesNothingMore() {
        let h = Harness()
        h.open()
        h.client("QUIT\r\n")
        let r = h.server("221 2.0.0 Bye\r\n")
        #expect(r.client == "221 2.0.0 Bye\r\n")
        #expect(h.m.closeReason == "quit")
        // The upstream hangs up after its 221, as it should: the client must not get a 421 after the 221.
        let s = h.serverClosed()
        #expect(s.toClient.isEmpty)
        #expect(s.closeClient)
        #expect(h.m.closeReason == "quit")
        #expect(h.m.closedBy == .client)
    }

    @Test func quitThenClientCloseSendsNoSecondQuit() {
        let h = Harness()
        h.open()
        #expect(h.client("QUIT\r\n").server == "QUIT\r\n")
        #expect(h.clientClosed().isQuiet, "the reply to QUIT is still due")
        let r = h.server("221 2.0.0 Bye\r\n")
        #expect(r.client == "221 2.0.0 Bye\r\n")
        #expect(r.toServer.isEmpty, "the client's QUIT was already relayed")
        #expect(r.closeClient && r.closeServer)
    }

    @Test func quitAnsweredBeforeOtherRepliesInOrder() {
        let h = Harness()
        h.open()
        h.client("RSET\r\nQUIT\r\n")
        let r = h.server("250 2.0.0 Ok\r\n221 2.0.0 Bye\r\n")
        #expect(r.client == "250 2.0.0 Ok\r\n221 2.0.0 Bye\r\n")
    }

    // MARK: malformed upstream

    @Test(arguments: [
        "hello there\r\n", "25 short\r\n", "2500 ok\r\n", "199 informational\r\n", "600 odd\r\n",
        "250-a\r\n251 b\r\n", "250_ok\r\n", "\r\n", "abc\n",
    ])
    func malformedReplyIsTreatedAsLost(reply: String) {
        let h = Harness()
        h.open()
        h.client("NOOP\r\n")
        let s = h.server(reply)
        #expect(s.client == "421 4.4.2 \(PN): bad reply from destination\r\n")
        #expect(s.closeClient && s.closeServer)
        #expect(s.toServer.isEmpty)
        #expect(h.m.phase == .closed)
    }

    @Test func malformedReplyWithTransactionOpenTakesOver() {
        let h = Harness()
        h.open()
        h.client("MAIL FROM:<a@x.test>\r\n")
        h.server("250 ok\r\n")
        h.client("RCPT TO:<b@x.test>\r\n")
        let s = h.server("garbage\r\n")
        #expect(s.client == "451 4.4.2 \(PN): bad reply from destination\r\n")
        #expect(s.closeServer)
        #expect(!s.closeClient)
        #expect(h.m.phase == .takeover)
    }

    @Test func serverLineLongerThan16KBIsTreatedAsLost() {
        let h = Harness()
        h.open()
        h.client("NOOP\r\n")
        let long = "250 " + repeated("x", 17_000) + "\r\n"
        let s = h.server(long)
        #expect(s.client == "421 4.4.2 \(PN): bad reply from destination\r\n")
        #expect(s.closeServer && s.closeClient)
    }

    @Test func serverLineLongerThan16KBInChunksWithoutLF() {
        let h = Harness()
        h.open()
        h.client("NOOP\r\n")
        let s = h.server(chunks: b("250 " + repeated("x", 40_000)), size: 1024)
        #expect(s.client == "421 4.4.2 \(PN): bad reply from destination\r\n")
        #expect(s.closeServer && s.closeClient)
    }

    @Test func serverLineJustUnder16KBIsRelayed() {
        let h = Harness()
        h.open()
        h.client("NOOP\r\n")
        let line = "250 " + repeated("y", 16 * 1024 - 6) + "\r\n"
        #expect(b(line).count == 16 * 1024)
        let s = h.server(chunks: b(line), size: 3000)
        #expect(s.client == line)
        #expect(!s.closeServer)
    }

    // MARK: timeouts

    @Test func timeoutWhileAwaitingServerReply() {
        let h = Harness()
        h.open()
        h.client("NOOP\r\n")
        let s = h.timedOut()
        #expect(s.client == "421 4.4.2 \(PN): destination timed out\r\n")
        #expect(s.closeClient && s.closeServer)
        #expect(s.toServer.isEmpty)
        #expect(h.m.closeReason == "server_timeout")
    }

    @Test func timeoutAwaitingGreeting() {
        let h = Harness()
        let s = h.timedOut()
        #expect(s.client == "421 4.4.2 \(PN): destination timed out\r\n")
        #expect(s.closeClient)
    }

    @Test func timeoutAwaitingReplyWithTransactionOpen() {
        let h = Harness()
        h.open()
        h.client("MAIL FROM:<a@x.test>\r\n")
        h.server("250 ok\r\n")
        h.client("RCPT TO:<b@x.test>\r\n")
        let s = h.timedOut()
        #expect(s.client == "451 4.4.2 \(PN): destination timed out\r\n")
        #expect(s.closeServer)
        #expect(!s.closeClient)
        #expect(s.toServer.isEmpty)
        #expect(h.m.phase == .takeover)
        #expect(h.client("MAIL FROM:<a@x.test>\r\n").client == "451 4.3.0 \(PN): destination timed out\r\n")
        // A late reply from the timed-out upstream is ignored.
        #expect(h.server("250 2.1.5 late\r\n").isQuiet)
    }

    @Test func idleTimeout() {
        let h = Harness()
        h.open()
        let s = h.timedOut()
        #expect(s.client == "421 4.4.2 \(PN): idle timeout\r\n")
        #expect(s.server == "QUIT\r\n")
        #expect(s.closeClient && s.closeServer)
        #expect(h.m.closeReason == "idle_timeout")
        #expect(h.m.closedBy == .proxy)
    }

    @Test func idleTimeoutAbortsOpenTransaction() {
        let h = Harness()
        h.open()
        h.client("MAIL FROM:<a@x.test>\r\n")
        h.server("250 ok\r\n")
        let s = h.timedOut()
        #expect(s.client == "421 4.4.2 \(PN): idle timeout\r\n")
        #expect(s.server == "QUIT\r\n")
        #expect(s.transactions.first?.abortReason == "idle_timeout")
    }

    @Test func timeoutAfterCloseDoesNothing() {
        let h = Harness()
        h.open()
        h.timedOut()
        #expect(h.timedOut().isQuiet)
        #expect(h.shutdown().isQuiet)
        #expect(h.serverClosed().isQuiet)
        #expect(h.clientClosed().isQuiet)
    }

    // MARK: shutdown and connect failure

    @Test func shutdownDrainBound() {
        let h = Harness()
        h.open()
        let s = h.shutdown()
        #expect(s.client == "421 4.3.2 \(PN): shutting down\r\n")
        #expect(s.server == "QUIT\r\n")
        #expect(s.closeClient && s.closeServer)
        #expect(h.m.closeReason == "shutdown")
        #expect(h.m.closedBy == .proxy)
    }

    @Test func connectFailure() {
        let h = Harness()
        let s = h.connectFailed(destination: "192.0.2.1:25", reason: "connection refused")
        #expect(s.client == "421 4.4.1 \(PN): cannot connect to 192.0.2.1:25: connection refused\r\n")
        #expect(s.toServer.isEmpty)
        #expect(s.closeClient)
        #expect(h.m.closeReason == "connect_failed")
        #expect(h.m.closedBy == .proxy)
        #expect(h.m.phase == .closed)
    }

    @Test func connectFailureIPv6Timeout() {
        let h = Harness()
        let s = h.connectFailed(destination: "[2001:db8::1]:25", reason: "timed out")
        #expect(s.client == "421 4.4.1 \(PN): cannot connect to [2001:db8::1]:25: timed out\r\n")
    }

    // MARK: client close

    @Test func clientCloseWithPendingRepliesWaitsForThem() {
        let h = Harness()
        h.open()
        h.client("NOOP\r\nNOOP\r\n")
        let c = h.clientClosed()
        #expect(c.isQuiet)
        let r1 = h.server("250 2.0.0 one\r\n")
        #expect(r1.client == "250 2.0.0 one\r\n")
        #expect(!r1.closeClient)
        let r2 = h.server("250 2.0.0 two\r\n")
        #expect(r2.client == "250 2.0.0 two\r\n")
        #expect(r2.server == "QUIT\r\n")
        #expect(r2.closeClient && r2.closeServer)
        #expect(h.m.closeReason == "client_closed")
        #expect(h.m.closedBy == .client)
    }

    @Test func clientCloseWithNothingPendingQuitsUpstream() {
        let h = Harness()
        h.open()
        let s = h.clientClosed()
        #expect(s.server == "QUIT\r\n")
        #expect(s.toClient.isEmpty)
        #expect(s.closeClient && s.closeServer)
        #expect(h.m.closeReason == "client_closed")
    }

    @Test func clientCloseAbortsOpenTransaction() {
        let h = Harness()
        h.open()
        h.client("MAIL FROM:<a@x.test>\r\n")
        h.server("250 ok\r\n")
        let s = h.clientClosed()
        #expect(s.transactions.first?.abortReason == "client_closed")
        #expect(s.server == "QUIT\r\n")
    }

    @Test func clientClosesThenUpstreamClosesBeforeAnswering() {
        let h = Harness()
        h.open()
        h.client("NOOP\r\n")
        h.clientClosed()
        let s = h.serverClosed()
        #expect(s.closeClient && s.closeServer)
        #expect(s.toServer.isEmpty)
    }
}
