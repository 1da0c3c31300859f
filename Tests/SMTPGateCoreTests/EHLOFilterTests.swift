import Testing
@testable import SMTPGateCore

@Suite("EHLO reply filtering and enhanced status codes")
struct EHLOFilterTests {
    func ehlo(_ reply: String, forbid: Bool = false) -> (Harness, Step) {
        let h = Harness(forbidStartTLS: forbid)
        h.server(Harness.greeting)
        h.client("EHLO client.test\r\n")
        return (h, h.server(reply))
    }

    @Test func chunkingBinarymimeXexch50AlwaysRemoved() {
        let (_, s) = ehlo("250-mx.test Hello\r\n250-PIPELINING\r\n250-CHUNKING\r\n250-BINARYMIME\r\n"
            + "250-XEXCH50\r\n250-STARTTLS\r\n250 8BITMIME\r\n")
        #expect(s.client == "250-mx.test Hello\r\n250-PIPELINING\r\n250-STARTTLS\r\n250 8BITMIME\r\n")
    }

    @Test func startTLSRemovedOnlyWhenForbidden() {
        let reply = "250-mx.test\r\n250-STARTTLS\r\n250 PIPELINING\r\n"
        #expect(ehlo(reply, forbid: false).1.client == reply)
        #expect(ehlo(reply, forbid: true).1.client == "250-mx.test\r\n250 PIPELINING\r\n")
    }

    @Test func lastLineSeparatorFixedWhenLastLineRemoved() {
        #expect(ehlo("250-mx.test\r\n250-PIPELINING\r\n250 CHUNKING\r\n").1.client
            == "250-mx.test\r\n250 PIPELINING\r\n")
        #expect(ehlo("250-mx.test\r\n250-PIPELINING\r\n250-CHUNKING\r\n250 BINARYMIME\r\n").1.client
            == "250-mx.test\r\n250 PIPELINING\r\n")
        #expect(ehlo("250-mx.test\r\n250-SIZE 100\r\n250 STARTTLS\r\n", forbid: true).1.client
            == "250-mx.test\r\n250 SIZE 100\r\n")
    }

    @Test func everyExtensionRemovedLeavesOneLine() {
        #expect(ehlo("250-mx.test greets you\r\n250-CHUNKING\r\n250 XEXCH50\r\n").1.client
            == "250 mx.test greets you\r\n")
    }

    @Test func authLinesKept() {
        let reply = "250-mx.test\r\n250-AUTH PLAIN LOGIN\r\n250-AUTH=PLAIN LOGIN\r\n250 ENHANCEDSTATUSCODES\r\n"
        #expect(ehlo(reply).1.client == reply)
    }

    @Test func keywordsMatchCaseInsensitivelyAndExactly() {
        let (_, s) = ehlo("250-mx.test\r\n250-chunking\r\n250-Starttls\r\n250-CHUNKINGX\r\n250-XEXCH50=1\r\n"
            + "250 binarymime\r\n", forbid: true)
        #expect(s.client == "250-mx.test\r\n250 CHUNKINGX\r\n")
    }

    @Test func bareLFLinesFiltered() {
        #expect(ehlo("250-mx.test\n250-PIPELINING\n250 CHUNKING\n").1.client == "250-mx.test\n250 PIPELINING\n")
    }

    @Test func singleLineReplyUnchanged() {
        #expect(ehlo("250 mx.test\r\n").1.client == "250 mx.test\r\n")
    }

    @Test func negativeReplyUnchanged() {
        let reply = "550-5.7.1 go away\r\n550 5.7.1 CHUNKING\r\n"
        #expect(ehlo(reply).1.client == reply)
    }

    @Test func heloReplyNotFiltered() {
        let h = Harness(forbidStartTLS: true)
        h.server(Harness.greeting)
        h.client("HELO client.test\r\n")
        #expect(h.server("250 mx.test STARTTLS\r\n").client == "250 mx.test STARTTLS\r\n")
    }

    @Test func filterUnit() {
        let reply = Reply(code: 250, lines: [b("250-mx\r\n"), b("250-ENHANCEDSTATUSCODES\r\n"), b("250 CHUNKING\r\n")])
        let r = EHLOFilter.filter(reply, forbidStartTLS: false)
        #expect(latin1(r.bytes) == "250-mx\r\n250 ENHANCEDSTATUSCODES\r\n")
        #expect(r.enhancedStatusCodes)
        let r2 = EHLOFilter.filter(Reply(code: 250, lines: [b("250-ENHANCEDSTATUSCODES\r\n"), b("250 X\r\n")]),
                                   forbidStartTLS: false)
        #expect(!r2.enhancedStatusCodes, "the first line is the server's name, not an extension")
    }

    // MARK: ENHANCEDSTATUSCODES

    @Test func proxyRepliesCarryEnhancedCodesWhenAdvertised() {
        let h = Harness(forbidStartTLS: true)
        h.open(caps: ["PIPELINING", "ENHANCEDSTATUSCODES"])
        #expect(h.client("BDAT 0 LAST\r\n").client == "502 5.5.1 \(PN): BDAT not supported\r\n")
        #expect(h.client("STARTTLS\r\n").client == "502 5.5.1 \(PN): STARTTLS not permitted\r\n")
        #expect(h.timedOut().client == "421 4.4.2 \(PN): idle timeout\r\n")
    }

    @Test func noEnhancedCodesWhenEHLOReplyLacksThem() {
        let h = Harness(forbidStartTLS: true)
        h.open(caps: ["PIPELINING", "8BITMIME"])
        #expect(h.client("BDAT 0 LAST\r\n").client == "502 \(PN): BDAT not supported\r\n")
        #expect(h.client("STARTTLS\r\n").client == "502 \(PN): STARTTLS not permitted\r\n")
        #expect(h.client("XEXCH50 1 2\r\n").client == "502 \(PN): XEXCH50 not supported\r\n")
        #expect(h.timedOut().client == "421 \(PN): idle timeout\r\n")
    }

    @Test func noEnhancedCodesAfterHELO() {
        let h = Harness()
        h.openHELO()
        #expect(h.client("BDAT 0 LAST\r\n").client == "502 \(PN): BDAT not supported\r\n")
        #expect(h.shutdown().client == "421 \(PN): shutting down\r\n")
    }

    @Test func noEnhancedCodesInLossReplyAfterHELO() {
        let h = Harness()
        h.openHELO()
        #expect(h.serverClosed().client == "421 \(PN): connection to destination lost\r\n")
    }

    @Test func enhancedCodesBeforeAnyHello() {
        let h = Harness()
        h.server(Harness.greeting)
        #expect(h.client("BDAT 0 LAST\r\n").client == "502 5.5.1 \(PN): BDAT not supported\r\n")
    }

    @Test func rejectedEHLOLeavesTheSettingAlone() {
        let h = Harness()
        h.server(Harness.greeting)
        h.client("EHLO client.test\r\n")
        h.server("502 5.5.2 EHLO not here\r\n")
        #expect(h.client("BDAT 0 LAST\r\n").client == "502 5.5.1 \(PN): BDAT not supported\r\n")
        h.client("HELO client.test\r\n")
        h.server("250 mx.test\r\n")
        #expect(h.client("BDAT 0 LAST\r\n").client == "502 \(PN): BDAT not supported\r\n")
    }

    @Test func secondEHLOWithCodesRestoresThem() {
        let h = Harness()
        h.openHELO()
        h.client("EHLO client.test\r\n")
        h.server(Harness.ehloReply(["ENHANCEDSTATUSCODES"]))
        #expect(h.client("BDAT 0 LAST\r\n").client == "502 5.5.1 \(PN): BDAT not supported\r\n")
    }

    /// A proxy reply queued behind an EHLO (a client that pipelines past EHLO) is written after the EHLO
    /// reply, so it must follow what that reply advertised: no ENHANCEDSTATUSCODES → no x.y.z.
    @Test func localReplyQueuedBehindEHLOFollowsItsOutcome() {
        let h = Harness()
        h.server(Harness.greeting)
        let s = h.client("EHLO client.test\r\nBDAT 0 LAST\r\n")
        #expect(s.server == "EHLO client.test\r\n")
        let r = h.server(Harness.ehloReply(["PIPELINING"]))
        #expect(r.client == Harness.ehloReply(["PIPELINING"]) + "502 \(PN): BDAT not supported\r\n")
    }
}
