import Testing
@testable import SMTPGateCore

@Suite("STARTTLS: blind relay after 220, refusal when forbidden")
struct StartTLSTests {
    static let clientHello: [UInt8] = [0x16, 0x03, 0x01, 0x00, 0x05, 0x01, 0x00, 0x0d, 0x0a, 0x2e, 0x0d, 0x0a]
    static let serverHello: [UInt8] = [0x16, 0x03, 0x03, 0x00, 0x02, 0x02, 0x00, 0x0a]

    static func blind() -> Harness {
        let h = Harness()
        h.open(caps: ["PIPELINING", "STARTTLS", "ENHANCEDSTATUSCODES"])
        // The client's TLS hello arrives with the STARTTLS command: it must wait for the 220.
        let s = h.client(bytes: b("STARTTLS\r\n") + clientHello)
        #expect(s.server == "STARTTLS\r\n")
        let r = h.server(bytes: b("220 2.0.0 Ready to start TLS\r\n") + serverHello)
        #expect(r.goBlind)
        #expect(r.events == [.startTLS])
        #expect(r.toClient == b("220 2.0.0 Ready to start TLS\r\n") + serverHello)
        #expect(r.toServer == clientHello)
        #expect(h.m.phase == .blind)
        return h
    }

    @Test func passThroughGoesBlindAndRelaysRawBothWays() {
        let h = StartTLSTests.blind()
        // Nothing is parsed any more: command-like bytes pass unchanged, both ways.
        let junk: [UInt8] = b("QUIT\r\nBDAT 3\r\nabc") + [0x00, 0xff, 0x0d, 0x0a, 0x2e, 0x0d, 0x0a]
        let c = h.client(bytes: junk)
        #expect(c.toServer == junk)
        #expect(c.toClient.isEmpty)
        #expect(!c.closeClient && !c.closeServer)
        #expect(ownedByteCount(c.raw[0].toServer) == 0, "blind bytes are relayed as input ranges")
        let s = h.server(bytes: b("421 not a reply any more\r\n") + [0x17, 0x03, 0x03])
        #expect(s.toClient == b("421 not a reply any more\r\n") + [0x17, 0x03, 0x03])
        #expect(s.toServer.isEmpty)
        #expect(!s.closeClient)
        let big = [UInt8](repeating: 0x41, count: 200_000)
        #expect(h.client(bytes: big).toServer == big)
        #expect(h.server(bytes: big).toClient == big)
        #expect(h.m.phase == .blind)
    }

    @Test func twoTwentyAloneThenTLSBytes() {
        let h = Harness()
        h.open(caps: ["STARTTLS"])
        h.client("STARTTLS\r\n")
        let r = h.server("220 Go ahead\r\n")
        #expect(r.goBlind)
        #expect(r.client == "220 Go ahead\r\n")
        #expect(r.toServer.isEmpty)
        #expect(h.client(bytes: StartTLSTests.clientHello).toServer == StartTLSTests.clientHello)
    }

    @Test func refusedStartTLSStaysInCommandMode() {
        let h = Harness()
        h.open(caps: ["STARTTLS"])
        let s = h.client("STARTTLS\r\nNOOP\r\n")
        #expect(s.server == "STARTTLS\r\n")
        let r = h.server("454 4.7.0 TLS not available\r\n")
        #expect(r.client == "454 4.7.0 TLS not available\r\n")
        #expect(!r.goBlind)
        #expect(r.server == "NOOP\r\n")
        #expect(h.m.phase == .relay)
    }

    @Test func forbiddenStartTLSIsAnsweredLocally() {
        let h = Harness(forbidStartTLS: true)
        let e = h.open(caps: ["PIPELINING", "STARTTLS", "ENHANCEDSTATUSCODES"])
        #expect(!e.client.contains("STARTTLS"))
        let s = h.client("STARTTLS\r\nNOOP\r\n")
        #expect(s.client == "502 5.5.1 \(PN): STARTTLS not permitted\r\n")
        #expect(s.server == "NOOP\r\n", "not a barrier when refused locally")
        #expect(!s.goBlind)
    }

    @Test func blindClientHalfClose() {
        let h = StartTLSTests.blind()
        let s = h.clientClosed()
        #expect(s.halfCloseServer)
        #expect(!s.closeClient)
        #expect(s.toServer.isEmpty && s.toClient.isEmpty)
        let late = h.server(bytes: [1, 2, 3])
        #expect(late.toClient == [1, 2, 3], "the upstream may still answer after the client's half-close")
        let c = h.serverClosed()
        #expect(c.closeClient && c.closeServer)
        #expect(c.toClient.isEmpty)
    }

    @Test func blindServerClose() {
        let h = StartTLSTests.blind()
        let s = h.serverClosed()
        #expect(s.closeClient && s.closeServer)
        #expect(s.toClient.isEmpty, "nothing can be injected into a TLS stream")
        #expect(s.toServer.isEmpty)
        #expect(h.m.closeReason == "server_closed")
        #expect(h.m.closedBy == .server)
    }

    @Test func blindShutdownInjectsNothing() {
        let h = StartTLSTests.blind()
        let s = h.shutdown()
        #expect(s.toClient.isEmpty)
        #expect(s.toServer.isEmpty)
        #expect(s.closeClient && s.closeServer)
        #expect(h.m.closeReason == "shutdown")
    }

    @Test func blindTimeoutClosesWithoutWriting() {
        let h = StartTLSTests.blind()
        let s = h.timedOut()
        #expect(s.toClient.isEmpty)
        #expect(s.toServer.isEmpty)
        #expect(s.closeClient && s.closeServer)
        #expect(h.m.closedBy == .proxy)
    }

    /// A blind relay that idles past timeout_direct closes with reason `direct_timeout`.
    @Test func blindTimeoutCloseReason() {
        let h = StartTLSTests.blind()
        h.timedOut()
        #expect(h.m.closeReason == "direct_timeout")
    }
}
