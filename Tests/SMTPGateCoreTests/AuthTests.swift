import Testing
@testable import SMTPGateCore

@Suite("AUTH and SASL continuation lines")
struct AuthTests {
    @Test func saslLinesThatLookLikeQuitAndDataAreForwardedAsData() {
        let h = Harness()
        h.open()
        #expect(h.client("AUTH LOGIN\r\n").server == "AUTH LOGIN\r\n")
        #expect(h.server("334 VXNlcm5hbWU6\r\n").client == "334 VXNlcm5hbWU6\r\n")

        let u = h.client("QUIT\r\n")
        #expect(u.server == "QUIT\r\n")
        #expect(u.toClient.isEmpty)
        #expect(!u.closeClient && !u.closeServer)
        #expect(h.server("334 UGFzc3dvcmQ6\r\n").client == "334 UGFzc3dvcmQ6\r\n")

        let p = h.client("DATA\r\n")
        #expect(p.server == "DATA\r\n")
        #expect(p.toClient.isEmpty)
        let ok = h.server("235 2.7.0 Authentication successful\r\n")
        #expect(ok.client == "235 2.7.0 Authentication successful\r\n")
        #expect(ok.transactions.isEmpty)

        // Back in command mode: DATA did not open a body (BDAT is answered locally, not forwarded),
        // and QUIT did not end anything.
        let probe = h.client("BDAT 0 LAST\r\n")
        #expect(probe.client == "502 5.5.1 \(PN): BDAT not supported\r\n")
        #expect(probe.toServer.isEmpty)
        #expect(h.m.closeReason == nil)
        #expect(h.m.phase == .relay)

        h.client("MAIL FROM:<a@x.test>\r\n")
        h.server("250 2.1.0 Ok\r\n")
        h.client("QUIT\r\n")
        let bye = h.server("221 2.0.0 Bye\r\n")
        #expect(bye.client == "221 2.0.0 Bye\r\n")
        #expect(h.m.closeReason == "quit")
    }

    @Test func saslLineIsABarrierForWhatFollows() {
        let h = Harness()
        h.open()
        // AUTH and its first SASL line in one packet: the SASL line waits for the 334.
        let s = h.client("AUTH LOGIN\r\ndXNlcg==\r\n")
        #expect(s.server == "AUTH LOGIN\r\n")
        let c1 = h.server("334 VXNlcm5hbWU6\r\n")
        #expect(c1.client == "334 VXNlcm5hbWU6\r\n")
        #expect(c1.server == "dXNlcg==\r\n")
        // The password line and a following command in one packet: the command waits for the outcome.
        let s2 = h.client("cGFzcw==\r\nNOOP\r\n")
        #expect(s2.server == "")
        let c2 = h.server("334 UGFzc3dvcmQ6\r\n")
        #expect(c2.server == "cGFzcw==\r\n", "only one SASL line per 334")
        let c3 = h.server("235 2.7.0 ok\r\n")
        #expect(c3.client == "235 2.7.0 ok\r\n")
        #expect(c3.server == "NOOP\r\n", "released as a command after 235")
        #expect(h.server("250 2.0.0 ok\r\n").client == "250 2.0.0 ok\r\n")
    }

    @Test func saslLineBytewise() {
        let h = Harness()
        h.open()
        h.client("AUTH LOGIN\r\n")
        h.server("334 VXNlcm5hbWU6\r\n")
        let s = h.clientBytewise("QUIT\r\n")
        #expect(s.server == "QUIT\r\n")
        #expect(!s.closeClient)
        h.server("334 UGFzc3dvcmQ6\r\n")
        #expect(h.clientBytewise("DATA\r\n").server == "DATA\r\n")
        #expect(h.server("535 5.7.8 bad credentials\r\n").client == "535 5.7.8 bad credentials\r\n")
        #expect(h.client("NOOP\r\n").server == "NOOP\r\n")
    }

    @Test func authCancelWithStar() {
        let h = Harness()
        h.open()
        h.client("AUTH LOGIN\r\n")
        h.server("334 VXNlcm5hbWU6\r\n")
        let s = h.client("*\r\n")
        #expect(s.server == "*\r\n")
        let r = h.server("501 5.7.0 Authentication cancelled\r\n")
        #expect(r.client == "501 5.7.0 Authentication cancelled\r\n")
        // Command mode again: QUIT is a command.
        #expect(h.client("QUIT\r\n").server == "QUIT\r\n")
        h.server("221 2.0.0 Bye\r\n")
        #expect(h.m.closeReason == "quit")
    }

    @Test func authPlainWithInitialResponse() {
        let h = Harness()
        h.open()
        let s = h.client("AUTH PLAIN AHVzZXIAcGFzcw==\r\nMAIL FROM:<a@x.test>\r\n")
        #expect(s.server == "AUTH PLAIN AHVzZXIAcGFzcw==\r\n")
        let r = h.server("235 2.7.0 Authentication successful\r\n")
        #expect(r.client == "235 2.7.0 Authentication successful\r\n")
        #expect(r.server == "MAIL FROM:<a@x.test>\r\n")
        let m = h.server("250 2.1.0 Ok\r\n")
        #expect(m.client == "250 2.1.0 Ok\r\n")
    }

    @Test func authPlainWithEmptyChallenge() {
        let h = Harness()
        h.open()
        h.client("AUTH PLAIN\r\n")
        #expect(h.server("334 \r\n").client == "334 \r\n")
        #expect(h.client("AHVzZXIAcGFzcw==\r\n").server == "AHVzZXIAcGFzcw==\r\n")
        #expect(h.server("235 2.7.0 ok\r\n").client == "235 2.7.0 ok\r\n")
        #expect(h.client("NOOP\r\n").server == "NOOP\r\n")
    }

    @Test func authRejectedOutright() {
        let h = Harness()
        h.open()
        h.client("AUTH CRAM-MD5\r\nNOOP\r\n")
        let r = h.server("504 5.5.4 mechanism not supported\r\n")
        #expect(r.client == "504 5.5.4 mechanism not supported\r\n")
        #expect(r.server == "NOOP\r\n")
    }

    @Test func lowercaseAuthIsABarrier() {
        let h = Harness()
        h.open()
        let s = h.client("auth login\r\nQUIT\r\n")
        #expect(s.server == "auth login\r\n")
        let r = h.server("334 VXNlcm5hbWU6\r\n")
        #expect(r.server == "QUIT\r\n", "the held line is a SASL response")
        #expect(h.m.closeReason == nil)
    }

    /// MAIL accepted, then AUTH LOGIN answered 334: the MTA waits for the client's first SASL line.
    func authStartedInsideATransaction() -> Harness {
        let h = Harness()
        h.open()
        h.client("MAIL FROM:<a@x.test>\r\n")
        h.server("250 2.1.0 Ok\r\n")
        h.client("AUTH LOGIN\r\n")
        h.server("334 VXNlcm5hbWU6\r\n")
        return h
    }

    /// A server that lets AUTH start inside a mail transaction (RFC 4954 says it should refuse) and then
    /// drops the connection mid-exchange: the session is taken over, so the client's next line is a command
    /// for the takeover responder, not a SASL line for a server that is gone.
    @Test func upstreamLostMidSASLExchangeInsideATransaction() {
        let h = authStartedInsideATransaction()
        h.client("dXNlcg==\r\n")
        let lost = h.serverClosed()
        #expect(lost.client == "451 4.4.2 \(PN): connection to destination lost\r\n")
        #expect(h.m.phase == .takeover)
        let q = h.client("QUIT\r\n")
        #expect(q.toServer.isEmpty, "nothing goes to an upstream that is gone")
        #expect(q.client == "221 2.0.0 \(PN): closing connection\r\n")
        #expect(q.closeClient)
    }

    @Test func theUpstreamLostAfter334OwesNoReplyForTheSASLLineNotYetSent() {
        // Found by fuzzing: with a transaction open the 334's pending AUTH became a 451 at once, before the
        // client had sent its SASL line, and that line then got the takeover's answer too.
        let h = authStartedInsideATransaction()
        let lost = h.serverClosed()
        #expect(lost.toClient.isEmpty, "no reply before the client's next line: \(lost.client.debugDescription)")
        let line = h.client("dXNlcg==\r\n")
        #expect(line.client.split(separator: "\r\n").count == 1, "one reply for one line: \(line.client.debugDescription)")
        #expect(h.client("QUIT\r\n").client == "221 2.0.0 \(PN): closing connection\r\n")
    }

    @Test func waitingForTheClientsSASLLineIsTheClientsIdleTime() {
        let h = Harness()
        h.open()
        h.client("AUTH LOGIN\r\n")
        h.server("334 VXNlcm5hbWU6\r\n")
        let t = h.timedOut()
        #expect(t.client == "421 4.4.2 \(PN): idle timeout\r\n")
        #expect(h.m.closeReason == "idle_timeout")
    }
}
