import Testing
@testable import SMTPGateCore

@Suite("size_limit: 552 5.3.4, upstream aborted, counted on un-stuffed bytes")
struct SizeLimitTests {
    static func harness(limit: Int) -> Harness {
        Harness { $0.sizeLimit = limit }
    }

    @Test func bodyOverTheLimitIsNeverCompletedUpstream() {
        let h = SizeLimitTests.harness(limit: 100)
        h.openInData()
        let first = h.client(repeated("a", 58) + "\r\n")
        #expect(first.server == repeated("a", 58) + "\r\n")
        let over = h.client(repeated("b", 58) + "\r\n")
        #expect(over.toServer.isEmpty, "the chunk that crosses the limit is not forwarded")
        #expect(over.closeServer, "the upstream is closed before it can see a final dot")
        #expect(over.takeovers == ["message size exceeds fixed limit"])
        let end = h.client("more\r\n.\r\nQUIT\r\n")
        #expect(end.toServer.isEmpty)
        #expect(end.client == "552 5.3.4 \(PN): message size exceeds fixed limit (size_limit 100)\r\n221 2.0.0 \(PN): closing connection\r\n")
        #expect(end.closeClient)
        let t = h.all.transactions
        #expect(t.count == 1)
        #expect(t.first?.resultCode == nil)
        #expect(t.first?.abortReason == "size_limit")
        #expect(!h.all.server.contains("\r\n.\r\n"), "the MTA never saw the end of the message")
    }

    @Test func bodyExactlyAtTheLimitPasses() {
        let body = repeated("x", 98) + "\r\n"  // 100 bytes
        let h = SizeLimitTests.harness(limit: 100)
        h.openInData()
        let s = h.client(body + ".\r\n")
        #expect(s.server == body + ".\r\n")
        #expect(!s.closeServer)
        let r = h.server("250 2.0.0 queued\r\n")
        #expect(r.client == "250 2.0.0 queued\r\n")
        #expect(r.transactions.first?.size == 100)
    }

    @Test func stuffingDotsAreNotCounted() {
        // 3 lines of ".." + 8 x's + CRLF: 12 bytes on the wire each, 11 stored; 36 raw, 33 stored.
        let body = repeated(".." + repeated("x", 8) + "\r\n", 3)
        let h = SizeLimitTests.harness(limit: 33)
        h.openInData()
        let s = h.client(body + ".\r\n")
        #expect(s.server == body + ".\r\n")
        #expect(!s.closeServer)
        #expect(h.server("250 ok\r\n").transactions.first?.size == 33)
    }

    @Test func limitCrossedByteAtATimeStillAbortsBeforeTheDot() {
        let h = SizeLimitTests.harness(limit: 10)
        h.openInData()
        let s = h.clientBytewise(repeated("z", 30) + "\r\n.\r\n")
        #expect(s.closeServer)
        #expect(latin1(h.all.toServer).hasSuffix(repeated("z", 10)))
        #expect(!h.all.server.contains("\r\n.\r\n"))
        #expect(s.client.hasPrefix("552 5.3.4 "))
    }

    @Test func declaredSizeOverTheLimitIsRefusedAtMail() {
        let h = SizeLimitTests.harness(limit: 1000)
        h.open()
        let s = h.client("MAIL FROM:<a@x.test> BODY=8BITMIME size=1001\r\nRCPT TO:<b@x.test>\r\n")
        #expect(s.server.isEmpty, "the oversized MAIL is not forwarded, nor the RCPT of its refused transaction")
        #expect(s.client == "552 5.3.4 \(PN): message size exceeds fixed limit (size_limit 1000)\r\n"
            + "503 5.5.1 \(PN): no mail transaction (MAIL was refused)\r\n")
        #expect(s.transactions.first?.abortReason == "size_limit")
        #expect(s.transactions.first?.mailCode == 552)
        let ok = h.client("MAIL FROM:<a@x.test> SIZE=1000\r\n")
        #expect(ok.server == "MAIL FROM:<a@x.test> SIZE=1000\r\n")
    }

    @Test(arguments: [
        ("MAIL FROM:<a@b> SIZE=123", 123), ("mail from:<a@b> size=0", 0), ("MAIL FROM:<a@b> SIZE=", nil),
        ("MAIL FROM:<a@b> XSIZE=5", nil), ("MAIL FROM:<a@b> SIZE=99999999999999999999999", Int.max),
        ("MAIL FROM:<a@b>", nil), ("MAIL FROM:<SIZE=7@b>", nil),
    ])
    func sizeParameterParsing(line: String, expected: Int?) {
        #expect(CommandText.mailSize(b(line + "\r\n")) == expected)
    }

    @Test func noLimitByDefault() {
        let h = Harness()
        h.openInData()
        let big = repeated(repeated("y", 998) + "\r\n", 2000)
        let s = h.client(big + ".\r\n")
        #expect(s.server == big + ".\r\n")
        #expect(!s.closeServer)
    }
}
