import Testing
@testable import SMTPGateCore

@Suite("BDAT is refused and its chunk swallowed")
struct BDATTests {
    @Test func chunkPayloadContainingQuitIsNotActedOn() {
        let h = Harness()
        h.open()
        let s = h.client("BDAT 6 LAST\r\nQUIT\r\n")
        #expect(s.client == "502 5.5.1 \(PN): BDAT not supported\r\n")
        #expect(s.toServer.isEmpty)
        #expect(!s.closeClient && !s.closeServer)
        #expect(h.m.phase == .relay)
        #expect(h.client("NOOP\r\n").server == "NOOP\r\n")
        h.server("250 2.0.0 Ok\r\n")
        #expect(h.m.closeReason == nil)
    }

    @Test func chunkPayloadSplitAcrossPackets() {
        let h = Harness()
        h.open()
        #expect(h.client("BDAT 10\r\nQUIT").client == "502 5.5.1 \(PN): BDAT not supported\r\n")
        let s = h.client("\r\nDA")
        #expect(s.isQuiet)
        let s2 = h.client("TA")
        #expect(s2.isQuiet)
        let s3 = h.client("RSET\r\n")
        #expect(s3.server == "RSET\r\n", "the chunk ended after 10 bytes; RSET is a command")
    }

    @Test func chunkPayloadByteAtATime() {
        let h = Harness()
        h.open()
        let s = h.clientBytewise("BDAT 12 LAST\r\nDATA\r\nQUIT\r\nNOOP\r\n")
        #expect(s.client == "502 5.5.1 \(PN): BDAT not supported\r\n")
        #expect(s.server == "NOOP\r\n")
        #expect(!s.closeClient)
    }

    @Test func bdatZeroHasNoPayload() {
        let h = Harness()
        h.open()
        let s = h.client("BDAT 0 LAST\r\nNOOP\r\n")
        #expect(s.client == "502 5.5.1 \(PN): BDAT not supported\r\n")
        #expect(s.server == "NOOP\r\n")
    }

    @Test func bdatWithoutSizeSwallowsNothing() {
        let h = Harness()
        h.open()
        let s = h.client("BDAT\r\nNOOP\r\nBDAT x\r\nRSET\r\n")
        #expect(s.client == "502 5.5.1 \(PN): BDAT not supported\r\n")
        #expect(s.server == "NOOP\r\nRSET\r\n")
        let r = h.server("250 a\r\n250 b\r\n")
        #expect(r.client == "250 a\r\n502 5.5.1 \(PN): BDAT not supported\r\n250 b\r\n")
    }

    @Test func bdatSizeParsing() {
        #expect(CommandText.bdatSize(b("BDAT 1234 LAST\r\n")) == 1234)
        #expect(CommandText.bdatSize(b("bdat 7\r\n")) == 7)
        #expect(CommandText.bdatSize(b("BDAT 0\r\n")) == 0)
        #expect(CommandText.bdatSize(b("BDAT\r\n")) == nil)
        #expect(CommandText.bdatSize(b("BDAT -1\r\n")) == nil)
        #expect(CommandText.bdatSize(b("BDAT 99999999999999999999999\r\n")) == nil)
    }

    @Test func hugeChunkSwallowsEverythingAfter() {
        let h = Harness()
        h.open()
        h.client("BDAT 1000000\r\n")
        let s = h.client(chunks: b(repeated("QUIT\r\nDATA\r\n", 5000)), size: 4096)
        #expect(s.isQuiet)
        #expect(h.m.phase == .relay)
    }

    /// In takeover the responder answers BDAT with 502 too, and the chunk that follows is still message data:
    /// a "QUIT" inside it must not end the session, nor count as commands.
    @Test func chunkPayloadIsSwallowedInTakeoverToo() {
        let h = TakeoverTests.takenOverAfterUpstreamLoss()
        let s = h.client("BDAT 6 LAST\r\nQUIT\r\nNOOP\r\n")
        #expect(s.client == "502 5.5.1 \(PN): connection to destination lost\r\n250 2.0.0 OK\r\n")
        #expect(!s.closeClient)
        #expect(h.m.phase == .takeover)
    }

    @Test func bdatInsideDataBodyIsData() {
        let h = Harness()
        h.openInData()
        #expect(h.client("BDAT 4\r\nabcd\r\n").server == "BDAT 4\r\nabcd\r\n")
    }
}
