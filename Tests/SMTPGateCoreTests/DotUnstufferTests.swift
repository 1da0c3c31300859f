import Testing
@testable import SMTPGateCore

@Suite("DotUnstuffer: the stored message from the body as sent")
struct DotUnstufferTests {
    static let cases: [(String, String)] = [
        ("", ""),
        ("plain\r\n", "plain\r\n"),
        ("..\r\n", ".\r\n"),
        ("..x\r\n", ".x\r\n"),
        ("...\r\n", "..\r\n"),
        (".x\r\n", "x\r\n"),
        (".", ""),
        ("a\r\n..\r\nb\r\n", "a\r\n.\r\nb\r\n"),
        ("a.b\r\nc..d\r\n", "a.b\r\nc..d\r\n"),
        ("a\n..b\n", "a\n..b\n"),
        ("a\r..b\r\n", "a\r..b\r\n"),
        ("a\r\r\n..b\r\n", "a\r\r\n.b\r\n"),
        ("a\r\n\r\n..\r\n..\r\n", "a\r\n\r\n.\r\n.\r\n"),
        ("\r\n.\r.\r\n", "\r\n\r.\r\n"),
        ("..\r\n..", ".\r\n."),
    ]

    /// Un-stuffs `pieces` one call each, keeping the emitted ranges honest: inside the buffer, in order,
    /// never overlapping.
    static func unstuff(_ pieces: [[UInt8]], sourceLocation: SourceLocation = #_sourceLocation) -> [UInt8] {
        var u = DotUnstuffer()
        var out: [UInt8] = []
        for p in pieces {
            p.withUnsafeBytes { buf in
                var last = 0
                u.unstuff(buf) { r in
                    #expect(r.lowerBound >= last && r.upperBound <= buf.count && !r.isEmpty, "\(r)",
                            sourceLocation: sourceLocation)
                    last = r.upperBound
                    out.append(contentsOf: buf[r])
                }
            }
        }
        return out
    }

    @Test(arguments: cases)
    func knownBodies(stuffed: String, message: String) {
        var u = DotUnstuffer()
        #expect(latin1(u.unstuff(b(stuffed))) == message)
        #expect(latin1(referenceUnstuff(b(stuffed))) == message)
    }

    @Test(arguments: cases)
    func everySplitGivesTheSameMessage(stuffed: String, message: String) {
        let bytes = b(stuffed)
        for cut in 0...bytes.count {
            let got = DotUnstufferTests.unstuff([Array(bytes[..<cut]), Array(bytes[cut...])])
            #expect(latin1(got) == message, "cut \(cut)")
        }
        for i in 0...bytes.count {
            for j in i...bytes.count {
                let got = DotUnstufferTests.unstuff([Array(bytes[..<i]), Array(bytes[i..<j]), Array(bytes[j...])])
                #expect(latin1(got) == message, "cuts \(i) \(j)")
            }
        }
        #expect(latin1(DotUnstufferTests.unstuff(bytes.map { [$0] })) == message, "bytewise")
    }

    @Test func emptyBuffersChangeNothing() {
        let got = DotUnstufferTests.unstuff([[], b("a\r"), [], b("\n"), [], b(".."), []])
        #expect(latin1(got) == "a\r\n.")
    }

    @Test func rangesAreOfTheInputNotCopies() {
        var u = DotUnstuffer()
        var ranges: [Range<Int>] = []
        b("ab\r\n..cd\r\n.e").withUnsafeBytes { buf in u.unstuff(buf) { ranges.append($0) } }
        #expect(ranges == [0..<4, 5..<10, 11..<12])
    }

    @Test func randomMessagesRoundTripInRandomPieces() {
        var rng = SplitMix64(seed: 0xD07)
        let alphabet: [UInt8] = [0x2e, 0x2e, 0x0d, 0x0a, 0x61, 0x00, 0xff]
        for round in 0..<500 {
            let message = (0..<Int.random(in: 0...60, using: &rng)).map { _ in alphabet.randomElement(using: &rng)! }
            let stuffed = referenceStuff(message)
            var cuts = (0..<Int.random(in: 0...5, using: &rng)).map { _ in Int.random(in: 0...stuffed.count, using: &rng) }
            cuts.sort()
            var pieces: [[UInt8]] = []
            var from = 0
            for c in cuts + [stuffed.count] {
                pieces.append(Array(stuffed[from..<c]))
                from = c
            }
            #expect(DotUnstufferTests.unstuff(pieces) == message, "round \(round)")
        }
    }

    @Test func agreesWithTheSizeTheSessionCounts() {
        // The size in the log (the machine's count) and the stored message (this type) must be the same thing.
        for (stuffed, message) in DotUnstufferTests.cases where stuffed.isEmpty || stuffed.hasSuffix("\r\n") {
            let h = Harness()
            h.openInData()
            h.client(stuffed + ".\r\n")
            let r = h.server("250 2.0.0 queued\r\n")
            #expect(r.transactions.first?.size == b(message).count, "\(stuffed.debugDescription)")
        }
    }
}
