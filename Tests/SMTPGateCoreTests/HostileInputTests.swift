import Testing
@testable import SMTPGateCore

@Suite("Hostile input: long lines, floods, junk, fuzz")
struct HostileInputTests {
    // MARK: long command lines

    @Test func hundredKilobyteCommandLineIsStreamedWithBoundedMemory() {
        let h = Harness()
        h.open()
        let maxLine = h.settings.maxCommandLine
        let line = b("NOOP " + repeated("A", 100_000))
        var forwarded: [UInt8] = []
        var streaming = false
        var i = 0
        while i < line.count {
            let piece = Array(line[i..<min(line.count, i + 1024)])
            let s = h.client(bytes: piece)
            forwarded += s.toServer
            #expect(storedCount(h.m, "lineBuf") <= maxLine, "the partial line kept is bounded (at \(i))")
            if streaming {
                #expect(s.toServer == piece, "once past maxCommandLine each packet is relayed as it comes")
            }
            if !s.toServer.isEmpty { streaming = true }
            i += 1024
        }
        #expect(streaming)
        #expect(forwarded == line)
        let end = h.client("\r\nNOOP\r\n")
        #expect(end.server == "\r\nNOOP\r\n")
        let r = h.server("500 5.5.2 line too long\r\n250 2.0.0 Ok\r\n")
        #expect(r.client == "500 5.5.2 line too long\r\n250 2.0.0 Ok\r\n")
        #expect(storedCount(h.m, "lineBuf") == 0)
    }

    @Test func hundredKilobyteCommandLineInOnePacket() {
        let h = Harness()
        h.open()
        let line = "NOOP " + repeated("B", 100_000) + "\r\n"
        let s = h.client(line + "RSET\r\n")
        #expect(s.toServer.count == b(line).count + 6)
        #expect(s.server == line + "RSET\r\n")
        #expect(storedCount(h.m, "lineBuf") == 0)
        let r = h.server("500 too long\r\n250 ok\r\n")
        #expect(r.client == "500 too long\r\n250 ok\r\n")
    }

    @Test func overlongLineOfBinaryJunk() {
        let h = Harness()
        h.open()
        var junk = (0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) }
        for k in junk.indices where junk[k] == 0x0a { junk[k] = 0x01 }
        let s = h.client(chunks: junk + b("\r\n"), size: 8192)
        #expect(s.toServer == junk + b("\r\n"))
        #expect(storedCount(h.m, "lineBuf") == 0)
        #expect(h.server("500 5.5.1 junk\r\n").client == "500 5.5.1 junk\r\n")
        #expect(h.client("QUIT\r\n").server == "QUIT\r\n")
    }

    @Test func overlongSASLLineIsStreamed() {
        let h = Harness()
        h.open()
        h.client("AUTH PLAIN\r\n")
        h.server("334 \r\n")
        let sasl = b(repeated("QUFB", 10_000))
        var forwarded: [UInt8] = []
        for start in stride(from: 0, to: sasl.count, by: 2048) {
            forwarded += h.client(bytes: Array(sasl[start..<min(sasl.count, start + 2048)])).toServer
            #expect(storedCount(h.m, "lineBuf") <= h.settings.maxCommandLine)
        }
        let tail = h.client("\r\nNOOP\r\n")
        forwarded += tail.toServer
        #expect(forwarded == sasl + b("\r\n"), "NOOP waits for the outcome of the exchange")
        let r = h.server("235 2.7.0 ok\r\n")
        #expect(r.server == "NOOP\r\n")
    }

    @Test func overlongBDATLineIsRefusedAndSwallowed() {
        let h = Harness()
        h.open()
        // A complete line in one packet is parsed whole, however long: the 5-byte chunk follows it.
        let s = h.client("BDAT 5 " + repeated("9", 20_000) + "\r\nabcdeNOOP\r\n")
        #expect(s.client == "502 5.5.1 \(PN): BDAT not supported\r\n")
        #expect(s.server == "NOOP\r\n")
    }

    // MARK: floods

    @Test func tenThousandPipelinedNoops() {
        let h = Harness(pipelineSize: 128, onTakeoverCmds: 10)
        h.open()
        let s = h.client(repeated("NOOP\r\n", 10_000))
        #expect(s.server == repeated("NOOP\r\n", 128) + "QUIT\r\n")
        #expect(s.takeovers == ["pipeline overflow"])
        #expect(s.toClient.isEmpty)
        let pending = storedCount(h.m, "pending")
        #expect(pending <= 128 + 1 + 10 + 2,
                "queued replies are bounded by pipeline_size + on_takeover_cmds, not by the client (got \(pending))")

        let r = h.server(repeated("250 2.0.0 Ok\r\n", 128) + "221 2.0.0 Bye\r\n")
        #expect(r.client == repeated("250 2.0.0 Ok\r\n", 128)
            + "503 5.0.0 \(PN): pipeline overflow\r\n"
            + repeated("250 2.0.0 OK\r\n", 10)
            + "554 5.7.0 \(PN): too many commands after session takeover\r\n")
        #expect(r.closeClient && r.closeServer)
    }

    @Test func tenThousandNoopsInRandomPackets() {
        var rng = SplitMix64(seed: 42)
        let h = Harness(pipelineSize: 128, onTakeoverCmds: 10)
        h.open()
        let flood = b(repeated("NOOP\r\n", 10_000))
        var i = 0
        var maxPending = 0
        while i < flood.count {
            let n = Int.random(in: 1...3000, using: &rng)
            h.client(bytes: Array(flood[i..<min(flood.count, i + n)]))
            maxPending = max(maxPending, storedCount(h.m, "pending"))
            i += n
        }
        #expect(maxPending <= 128 + 1 + 10 + 2, "got \(maxPending)")
        #expect(h.all.server == "EHLO client.test\r\n" + repeated("NOOP\r\n", 128) + "QUIT\r\n")
    }

    @Test func locallyAnsweredCommandsCannotQueueWithoutBound() {
        let h = Harness(pipelineSize: 16, onTakeoverCmds: 10)
        h.open()
        h.client("NOOP\r\n" + repeated("BDAT 0 LAST\r\n", 10_000))
        let pending = storedCount(h.m, "pending")
        #expect(pending <= 16 + 1 + 10 + 2, "a slow upstream must not let queued local replies grow (got \(pending))")
    }

    @Test func floodBeforeThe354IsPaused() {
        let h = Harness()
        h.open()
        h.client("MAIL FROM:<a@x.test>\r\nRCPT TO:<b@x.test>\r\n")
        h.server("250 ok\r\n250 ok\r\n")
        #expect(h.client("DATA\r\n").server == "DATA\r\n")
        // Feed like the shell: 16 KB reads until the machine asks for a pause.
        var fed = 0
        var paused = false
        while fed < 1_000_000, !paused {
            let s = h.client(bytes: [UInt8](repeating: 0x61, count: 16_384))
            #expect(s.toServer.isEmpty)
            paused = s.pauseClient
            fed += 16_384
        }
        #expect(paused)
        #expect(storedCount(h.m, "held") <= h.settings.holdLimit + 16_384)
        let r = h.server("354 go\r\n")
        #expect(r.resumeClient)
        #expect(r.toServer.count == fed)
    }

    @Test func serverReplyLargerThanTheReplyBound() {
        let h = Harness()
        h.open()
        h.client("HELP\r\n")
        let s = h.server(chunks: b(repeated("214-" + repeated("h", 996) + "\r\n", 300)), size: 4096)
        #expect(s.client == "421 4.4.2 \(PN): bad reply from destination\r\n")
        #expect(s.closeServer && s.closeClient)
    }

    // MARK: odd bytes

    @Test func nulPrefixedVerbIsNotAVerb() {
        let h = Harness()
        h.open()
        // "\0DATA" is not DATA: it must not become a barrier (nor "\0\0\0\0QUIT" a QUIT).
        let s = h.client(bytes: [0] + b("DATA\r\nNOOP\r\n"))
        #expect(s.toServer == [0] + b("DATA\r\nNOOP\r\n"))
        #expect(Verb.parse([0, 0, 0, 0] + b("QUIT")) == .other)
        #expect(Verb.parse([0] + b("BDAT 5")) == .other)
    }

    @Test func controlAndEightBitBytesInCommandsAreRelayedVerbatim() {
        let h = Harness()
        h.server(Harness.greeting)
        let cmd: [UInt8] = b("EHLO ") + [0xff, 0x00, 0x1b, 0x0d, 0x80] + b("\r\n")
        #expect(h.client(bytes: cmd).toServer == cmd)
        h.server(Harness.ehloReply(["PIPELINING"]))
        #expect(h.m.helo == "\\xff\\x00\\x1b\\x0d\\x80")
    }

    @Test func bareCRAndBareLFLines() {
        let h = Harness()
        h.open()
        let s = h.client("NOOP\rRSET\r\r\nNOOP\n")
        #expect(s.server == "NOOP\rRSET\r\r\nNOOP\n")
        #expect(h.server("250 a\r\n250 b\r\n").client == "250 a\r\n250 b\r\n")
    }

    // MARK: fuzz

    static let clientVocab = [
        "EHLO x\r\n", "HELO y\r\n", "MAIL FROM:<a@b>\r\n", "RCPT TO:<c@d>\r\n", "DATA\r\n", "BDAT 5 LAST\r\n",
        "BDAT 3\r\n", "AUTH LOGIN\r\n", "AUTH PLAIN abc\r\n", "STARTTLS\r\n", "QUIT\r\n", "RSET\r\n", "NOOP\r\n",
        ".\r\n", "\r\n.\r\n", "..\r\n", "*\r\n", "\r", "\n", ".", "x", "XEXCH50 1 2\r\n", "VRFY z\r\n", "quit\r\n",
        "data\r\n",
    ]
    static let serverVocab = [
        "220 hi\r\n", "250 ok\r\n", "250-a\r\n", "250 ENHANCEDSTATUSCODES\r\n", "250-CHUNKING\r\n", "250-STARTTLS\r\n",
        "354 go\r\n", "334 x\r\n", "235 ok\r\n", "221 bye\r\n", "421 bye\r\n", "550 no\r\n", "220 tls\r\n",
        "454 no\r\n", "garbage\r\n", "\r\n", "25", "0 ok\r\n", "\n", "535 bad\r\n", "251 fwd\r\n",
    ]

    static func randomBytes(_ rng: inout SplitMix64, max: Int) -> [UInt8] {
        (0..<Int.random(in: 1...max, using: &rng)).map { _ in
            // Bias towards the bytes SMTP cares about.
            switch rng.next() % 8 {
            case 0: return 0x0d
            case 1: return 0x0a
            case 2: return 0x2e
            default: return UInt8(truncatingIfNeeded: rng.next())
            }
        }
    }

    static func phrase(_ vocab: [String], _ rng: inout SplitMix64) -> [UInt8] {
        var out: [UInt8] = []
        for _ in 0..<Int.random(in: 1...4, using: &rng) {
            if rng.next() % 6 == 0 {
                out += HostileInputTests.randomBytes(&rng, max: 12)
            } else {
                out += b(vocab[Int(rng.next() % UInt64(vocab.count))])
            }
        }
        return out
    }

    @Test(arguments: [UInt64(1), 2, 3])
    func fuzzBothSides(seed: UInt64) {
        var rng = SplitMix64(seed: 0x5EED_0000 &+ seed)
        for iteration in 0..<1200 {
            let h = Harness(pipelineSize: Int.random(in: 1...6, using: &rng),
                            onTakeoverCmds: Int.random(in: 0...4, using: &rng),
                            forbidStartTLS: rng.next() % 2 == 0) {
                $0.maxCommandLine = 64
                $0.holdLimit = 256
            }
            var wasClosed = false
            var paused = false   // the shell stops reading the client while paused
            for _ in 0..<Int.random(in: 5...40, using: &rng) {
                let step: Step
                switch rng.next() % 20 {
                case 0..<8 where !paused:
                    let bytes = HostileInputTests.phrase(HostileInputTests.clientVocab, &rng)
                    step = h.client(chunks: bytes, size: Int.random(in: 1...bytes.count, using: &rng))
                case 16 where !paused:
                    step = h.client(bytes: HostileInputTests.randomBytes(&rng, max: 200))
                case 0..<17:
                    let bytes = HostileInputTests.phrase(HostileInputTests.serverVocab, &rng)
                    step = h.server(chunks: bytes, size: Int.random(in: 1...bytes.count, using: &rng))
                case 17:
                    step = h.server(bytes: HostileInputTests.randomBytes(&rng, max: 200))
                default:
                    switch rng.next() % 6 {
                    case 0: step = h.serverClosed()
                    case 1: step = h.clientClosed()
                    case 2: step = h.timedOut()
                    case 3: step = h.shutdown()
                    default:
                        step = paused ? Step() : h.client(bytes: b(repeated("Z", Int.random(in: 50...300, using: &rng)) + "\r\n"))
                    }
                }
                if step.pauseClient { paused = true }
                if step.resumeClient { paused = false }
                if wasClosed {
                    #expect(step.isQuiet || (step.events.isEmpty && step.toClient.isEmpty && step.toServer.isEmpty),
                            "iteration \(iteration): output after the session closed")
                }
                if h.m.phase == .closed { wasClosed = true }
                if h.m.phase != .blind {
                    #expect(storedCount(h.m, "lineBuf") <= 64, "iteration \(iteration)")
                    #expect(storedCount(h.m, "held") <= 256 + 300, "iteration \(iteration)")
                }
                let txns: [Transaction] = step.transactions
                for t in txns {
                    if let number = t.number { #expect(number >= 1, "iteration \(iteration)") }
                    #expect(t.size >= 0, "iteration \(iteration)")
                    #expect(!t.mailFrom.contains(" ") && !t.mailFrom.contains("\r") && !t.mailFrom.contains("\n"))
                }
            }
        }
    }

    @Test func fuzzServerAgainstAWellBehavedClient() {
        var rng = SplitMix64(seed: 0xC0FFEE)
        for iteration in 0..<1500 {
            let h = Harness(pipelineSize: 4, onTakeoverCmds: 3)
            h.server(Harness.greeting)
            for _ in 0..<Int.random(in: 3...25, using: &rng) {
                if rng.next() % 2 == 0 {
                    h.client(bytes: HostileInputTests.phrase(["EHLO c\r\n", "MAIL FROM:<a@b>\r\n", "RCPT TO:<c@d>\r\n", "DATA\r\n",
                                            "body\r\n.\r\n", "NOOP\r\n", "RSET\r\n"], &rng))
                } else {
                    let bytes = rng.next() % 5 == 0 ? HostileInputTests.randomBytes(&rng, max: 64)
                                                     : HostileInputTests.phrase(HostileInputTests.serverVocab, &rng)
                    h.server(chunks: bytes, size: Int.random(in: 1...bytes.count, using: &rng))
                }
                #expect(storedCount(h.m, "lineBuf") <= h.settings.maxCommandLine, "iteration \(iteration)")
            }
        }
    }
}
