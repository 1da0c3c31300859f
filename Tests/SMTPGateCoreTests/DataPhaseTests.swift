import Testing
@testable import SMTPGateCore

@Suite("DATA body relay and end-of-data detection")
struct DataPhaseTests {
    static let body = "Subject: test\r\n\r\nhello\r\n"

    @Test func terminatorSplitAtEveryPacketBoundary() {
        let stream = b(DataPhaseTests.body + ".\r\nNOOP\r\n")
        for cut in 0...stream.count {
            let h = Harness()
            h.openInData()
            h.client(bytes: Array(stream[..<cut]))
            h.client(bytes: Array(stream[cut...]))
            #expect(h.all.server.hasSuffix(DataPhaseTests.body + ".\r\nNOOP\r\n"), "cut \(cut)")
            let r = h.server("250 2.0.0 queued as X\r\n250 2.0.0 ok\r\n")
            #expect(r.client == "250 2.0.0 queued as X\r\n250 2.0.0 ok\r\n", "cut \(cut)")
            #expect(r.transactions.count == 1, "cut \(cut)")
            #expect(r.transactions.first?.resultCode == 250, "cut \(cut)")
            #expect(r.transactions.first?.size == b(DataPhaseTests.body).count, "cut \(cut)")
        }
    }

    @Test func terminatorSplitIntoThreePiecesEverywhere() {
        let stream = b("x\r\n.\r\nNOOP\r\n")
        for i in 0...stream.count {
            for j in i...stream.count {
                let h = Harness()
                h.openInData()
                let before = h.all.toServer.count
                h.client(bytes: Array(stream[..<i]))
                h.client(bytes: Array(stream[i..<j]))
                h.client(bytes: Array(stream[j...]))
                #expect(latin1(h.all.toServer[before...]) == "x\r\n.\r\nNOOP\r\n", "cuts \(i) \(j)")
                let r = h.server("250 2.0.0 queued\r\n250 2.0.0 ok\r\n")
                #expect(r.transactions.first?.resultCode == 250, "cuts \(i) \(j)")
                #expect(r.client == "250 2.0.0 queued\r\n250 2.0.0 ok\r\n")
            }
        }
    }

    @Test func bodyByteAtATime() {
        let h = Harness()
        h.openInData()
        let s = h.clientBytewise(DataPhaseTests.body + ".\r\n")
        #expect(s.server == DataPhaseTests.body + ".\r\n")
        #expect(h.probeIsInDataBody() == false)
    }

    @Test func bodyIsForwardedAsInputRanges() {
        let h = Harness()
        h.openInData()
        let s = h.client(DataPhaseTests.body)
        #expect(s.server == DataPhaseTests.body)
        #expect(ownedByteCount(s.raw[0].toServer) == 0, "body bytes are relayed without copying")
    }

    @Test func emptyBodyRightAfter354() {
        let h = Harness()
        h.openInData()
        #expect(h.client(".\r\n").server == ".\r\n")
        let r = h.server("250 2.0.0 queued\r\n")
        #expect(r.transactions.first?.size == 0)
        #expect(r.transactions.first?.resultCode == 250)
        #expect(h.probeIsInDataBody() == false)
    }

    @Test func dotStuffedLinesDoNotEndTheBody() {
        let h = Harness()
        h.openInData()
        let part = "..\r\n.foo\r\n..\r\n...\r\n. \r\n"
        #expect(h.client(part).server == part)
        #expect(h.probeIsInDataBody(), "dot-stuffed lines are body")
        #expect(h.client("\r\n.\r\n").server == "\r\n.\r\n")
        #expect(h.probeIsInDataBody() == false)
    }

    @Test func bareLFDotDoesNotEndTheBody() {
        let h = Harness()
        h.openInData()
        #expect(h.client("line\n.\nmore\n.\n").server == "line\n.\nmore\n.\n")
        #expect(h.probeIsInDataBody())
        #expect(h.client("\r\n.\n\r\n.\r\n").server == "\r\n.\n\r\n.\r\n")
        #expect(h.probeIsInDataBody() == false)
    }

    @Test func dotCRFollowedByOtherByteDoesNotEndTheBody() {
        let h = Harness()
        h.openInData()
        #expect(h.client("a\r\n.\r").server == "a\r\n.\r")
        #expect(h.client("x\r\n").server == "x\r\n")
        #expect(h.probeIsInDataBody())
        // CR CR LF after the dot is not the terminator either.
        #expect(h.client("\r\n.\r\r\n").server == "\r\n.\r\r\n")
        #expect(h.probeIsInDataBody())
        #expect(h.client(".\r\n").server == ".\r\n", "the probe line ended with CRLF, so this dot is at a line start")
        #expect(h.probeIsInDataBody() == false)
    }

    @Test func lineStartingWithDotCRLFAfterCRCRLF() {
        let h = Harness()
        h.openInData()
        #expect(h.client("a\r\r\n.\r\n").server == "a\r\r\n.\r\n")
        #expect(h.probeIsInDataBody() == false)
    }

    @Test func eightBitAndNULBytesRelayedExactly() {
        let h = Harness()
        h.openInData()
        var body: [UInt8] = [0x00, 0xff, 0x80, 0x0d, 0x00, 0x0a, 0x2e, 0x0d, 0x2e, 0x00, 0x0a]
        body += (0...255).map { UInt8($0) }
        body += [0x0d, 0x0a]
        let s = h.client(bytes: body)
        #expect(s.toServer == body)
        #expect(h.probeIsInDataBody())
        let end = h.client(".\r\n")
        #expect(end.server == ".\r\n")
        let r = h.server("250 ok\r\n")
        #expect(r.transactions.first?.size == body.count + b("BDAT 0 LAST\r\n").count)
    }

    @Test func seventyKilobyteLine() {
        let line = repeated("X", 70_000) + "\r\n"
        for chunk in [70_005, 4096, 1000] {
            let h = Harness()
            h.openInData()
            let s = h.client(chunks: b(line + ".\r\n"), size: chunk)
            #expect(s.toServer.count == 70_005, "chunk \(chunk)")
            #expect(s.server == line + ".\r\n", "chunk \(chunk)")
            let r = h.server("250 2.0.0 queued\r\n")
            #expect(r.transactions.first?.size == 70_002, "chunk \(chunk)")
        }
    }

    @Test func bodySentBefore354IsHeldThenRelayedAsBody() {
        let h = Harness()
        h.open()
        h.client("MAIL FROM:<a@x.test>\r\nRCPT TO:<b@x.test>\r\n")
        h.server("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n")
        let s = h.client("DATA\r\n" + DataPhaseTests.body + ".\r\nQUIT\r\n")
        #expect(s.server == "DATA\r\n", "nothing after DATA goes out before the 354")
        let r = h.server("354 go ahead\r\n")
        #expect(r.client == "354 go ahead\r\n")
        #expect(r.server == DataPhaseTests.body + ".\r\nQUIT\r\n")
        let f = h.server("250 2.0.0 queued\r\n221 2.0.0 bye\r\n")
        #expect(f.client == "250 2.0.0 queued\r\n221 2.0.0 bye\r\n")
        #expect(f.transactions.first?.resultCode == 250)
        #expect(f.transactions.first?.size == b(DataPhaseTests.body).count)
        #expect(h.m.closeReason == "quit")
    }

    @Test func bodySentBefore554IsReleasedAsCommands() {
        let h = Harness()
        h.open()
        h.client("MAIL FROM:<a@x.test>\r\nRCPT TO:<b@x.test>\r\n")
        h.server("250 2.1.0 Ok\r\n550 5.1.1 unknown\r\n")
        let s = h.client("DATA\r\nSubject: x\r\nBDAT 0 LAST\r\n.\r\n")
        #expect(s.server == "DATA\r\n")
        let r = h.server("554 5.5.1 Error: no valid recipients\r\n")
        #expect(r.server == "Subject: x\r\n.\r\n", "held lines are commands now; BDAT is answered locally")
        #expect(r.client == "554 5.5.1 Error: no valid recipients\r\n")
        let r2 = h.server("502 5.5.2 Error: command not recognized\r\n")
        #expect(r2.client == "502 5.5.2 Error: command not recognized\r\n502 5.5.1 \(PN): BDAT not supported\r\n")
        let r3 = h.server("502 5.5.2 Error: command not recognized\r\n")
        #expect(r3.client == "502 5.5.2 Error: command not recognized\r\n")
    }

    @Test func commandsPipelinedAfterTheFinalDot() {
        let h = Harness()
        h.openInData()
        let s = h.client("x\r\n.\r\nMAIL FROM:<c@x.test>\r\nRCPT TO:<d@x.test>\r\nDATA\r\nsecond\r\n.\r\n")
        #expect(s.server == "x\r\n.\r\nMAIL FROM:<c@x.test>\r\nRCPT TO:<d@x.test>\r\nDATA\r\n")
        let r = h.server("250 2.0.0 queued 1\r\n250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 go\r\n")
        #expect(r.client == "250 2.0.0 queued 1\r\n250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 go\r\n")
        #expect(r.server == "second\r\n.\r\n")
        #expect(r.transactions.map(\.number) == [1])
        let r2 = h.server("250 2.0.0 queued 2\r\n")
        #expect(r2.transactions.map(\.number) == [2])
        #expect(r2.transactions.first?.mailFrom == "<c@x.test>")
        #expect(r2.transactions.first?.size == 8)
        #expect(h.m.transactions == 2)
    }

    @Test func holdLimitPausesAndResumesTheClient() {
        let h = Harness { $0.holdLimit = 1000 }
        h.open()
        h.client("MAIL FROM:<a@x.test>\r\nRCPT TO:<b@x.test>\r\n")
        h.server("250 ok\r\n250 ok\r\n")
        let body = repeated("0123456789abcdef", 40) + "\r\n"   // 642 bytes per line
        let s1 = h.client("DATA\r\n" + body)
        #expect(!s1.pauseClient)
        let s2 = h.client(body)
        #expect(s2.pauseClient, "more than holdLimit bytes are held")
        #expect(s2.toServer.isEmpty)
        let r = h.server("354 go\r\n")
        #expect(r.resumeClient)
        #expect(r.server == body + body)
        #expect(h.client(".\r\n").server == ".\r\n")
    }

    @Test func dataRejectedWithNothingHeld() {
        let h = Harness()
        h.open()
        h.client("DATA\r\n")
        #expect(h.server("503 5.5.1 need RCPT\r\n").client == "503 5.5.1 need RCPT\r\n")
        #expect(h.probeIsInDataBody() == false)
    }

    @Test func idleTimeoutInsideBodySendsNoQuitUpstream() {
        let h = Harness()
        h.openInData()
        h.client("partial body\r\n")
        let s = h.timedOut()
        #expect(s.client == "421 4.4.2 \(PN): idle timeout\r\n")
        #expect(s.toServer.isEmpty, "a QUIT here would be message text")
        #expect(s.closeClient && s.closeServer)
        #expect(s.transactions.first?.resultCode == nil)
        #expect(s.transactions.first?.abortReason == "idle_timeout")
    }

    @Test func clientCloseInsideBodyAbortsWithoutQuit() {
        let h = Harness()
        h.openInData()
        h.client("partial body\r\n")
        let s = h.clientClosed()
        #expect(s.toServer.isEmpty)
        #expect(s.closeClient && s.closeServer)
        #expect(s.transactions.first?.abortReason == "client_closed")
        #expect(h.m.closeReason == "client_closed")
        #expect(h.m.closedBy == .client)
    }
}
