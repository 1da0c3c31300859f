import Testing
@testable import SMTPGateCore

/// SMTP smuggling: with a scanner configured, a dot next to a bare CR or LF (an end of message for a lenient
/// MTA) never reaches the MTA; the message gets 550 5.6.0 and the upstream is closed. Ordinary bodies,
/// including mid-line dots before bare line ends, are untouched.
@Suite("Bare CR/LF next to a dot: refused before the MTA can see an early end")
struct BareNewlineDotTests {
    /// The sequences some MTA takes for an end of DATA; each is followed by a smuggled command.
    static let smuggled = [
        "\n.\n", "\n.\r\n", "\r\n.\n", "\r\n.\r", "\r.\r", "\r.\r\n", "\n.\r",
    ]

    /// What any reading of line ends could take for a line-start dot ended by a line end, other than the
    /// real CRLF "." CRLF: written as a plain search, apart from `BareNewlineDot`.
    static func looksLikeAnEnd(_ s: [UInt8]) -> Bool {
        guard s.count >= 2 else { return false }
        for i in 1..<s.count where s[i] == 0x2e {
            let p1 = s[i - 1], p2: UInt8? = i >= 2 ? s[i - 2] : nil
            let n1: UInt8? = i + 1 < s.count ? s[i + 1] : nil, n2: UInt8? = i + 2 < s.count ? s[i + 2] : nil
            let lineStart = p1 == 0x0a || p1 == 0x0d
            let lineEnd = n1 == 0x0a || n1 == 0x0d
            let proper = p1 == 0x0a && p2 == 0x0d && n1 == 0x0d && n2 == 0x0a
            if lineStart, lineEnd, !proper { return true }
        }
        return false
    }

    private func run(_ body: String, split: [Int]) -> (sh: ScanHarness, mark: Int, end: Step) {
        let sh = ScanHarness()
        sh.openInData()
        let mark = sh.serverCount
        let bytes = b(body)
        var pieces: [[UInt8]] = []
        var from = 0
        for cut in split.sorted() where cut > from && cut < bytes.count {
            pieces.append(Array(bytes[from..<cut]))
            from = cut
        }
        pieces.append(Array(bytes[from...]))
        let end = sh.client(pieces: pieces)
        return (sh, mark, end)
    }

    @Test(arguments: smuggled)
    func smuggledEndIsRefusedAtEverySplit(seq: String) {
        let body = "Subject: x\r\n\r\nhello" + seq + "MAIL FROM:<evil@x.test>\r\nRCPT TO:<v@x.test>\r\nDATA\r\nbad\r\n.\r\n"
        for cut in 0...b(body).count {
            for second in [cut, cut + 1, cut + 2] {
                let (sh, mark, end) = run(body, split: [cut, second])
                let upstream = Array(sh.all.toServer[mark...])
                #expect(!Self.looksLikeAnEnd(upstream), "cut \(cut)/\(second): \(latin1(upstream).debugDescription)")
                #expect(!latin1(upstream).contains("MAIL FROM:<evil"), "cut \(cut)/\(second)")
                #expect(sh.all.closeServer, "cut \(cut)/\(second)")
                #expect(end.client == "550 5.6.0 \(PN): message refused: a bare CR or LF is followed by a dot\r\n",
                        "cut \(cut)/\(second)")
                #expect(sh.ends.isEmpty, "no scan for a refused message")
                let txn = sh.all.transactions.last
                #expect(txn?.abortReason == "bare_newline" && txn?.resultCode == nil, "cut \(cut)/\(second)")
            }
        }
    }

    @Test func aHeldDotBeforeTheSuspectBytesStillGoesFirst() {
        // Found by fuzzing: the line-start dot held at the end of one piece is body once the next piece
        // goes on; dropping it made CRLF "." LF of a stuffed "..": an early end for a lenient MTA.
        let (sh, mark, end) = run("hello\r\n..\n.X\r\n", split: [8])
        let upstream = Array(sh.all.toServer[mark...])
        #expect(latin1(upstream) == "hello\r\n..\n")
        #expect(!Self.looksLikeAnEnd(upstream))
        #expect(sh.all.closeServer)
        #expect(end.toClient.isEmpty, "the refusal answers the message's end")
    }

    @Test func theSessionIsTakenOverAfterwards() {
        let (sh, _, _) = run("a\n.\nb\r\n.\r\n", split: [])
        #expect(sh.client("MAIL FROM:<a@x.test>\r\n").client.hasPrefix("451 "))
        #expect(sh.client("QUIT\r\n").client.hasPrefix("221 "))
    }

    @Test(arguments: [
        "plain\r\nlines\r\n", "..stuffed\r\n...more\r\n", "..\r\n", "end of a sentence.\r\n",
        "bare LF after a mid-line dot.\nnext\r\n", "a.\rb\r\n", "dots ... inside\r\n", "x\n\n\r\n", "\r\n\r\n",
        "..\r\n..\r\n",
    ])
    func ordinaryBodiesAreDelivered(content: String) {
        let body = content + ".\r\n"
        for cut in 0...b(body).count {
            let (sh, mark, _) = run(body, split: [cut])
            #expect(!sh.all.closeServer, "cut \(cut) of \(content.debugDescription)")
            #expect(sh.ends.count == 1, "cut \(cut) of \(content.debugDescription): waits for the verdict")
            sh.verdict(.deliver)
            #expect(sh.server(since: mark) == latin1(b(body)), "cut \(cut) of \(content.debugDescription)")
        }
    }

    @Test func withoutAScannerNothingIsChecked() {
        let sh = ScanHarness(hold: false)
        sh.openInData()
        let mark = sh.serverCount
        sh.client("a\n.\nb\r\n.\r\n")
        #expect(sh.server(since: mark) == "a\n.\nb\r\n.\r\n")
        #expect(!sh.all.closeServer)
    }
}
