import Testing
@testable import SMTPGateCore

/// A `Harness` with a scanner configured (`holdFinalDot`), keeping what the machine handed the spool:
/// the `body` segments resolved against the buffer of the feed that produced them, every `messageStart`
/// and `messageEnd`. Verdicts go through it too, and it checks across every step (verdicts included) that
/// nothing is written to a side after the machine said to close it.
final class ScanHarness {
    let h: Harness
    private(set) var body: [UInt8] = []
    private(set) var starts = 0
    private(set) var ends: [Int] = []
    private var serverClosed = false
    private var clientClosed = false

    init(hold: Bool = true, natHeader: [UInt8]? = nil, sizeLimit: Int? = nil) {
        h = Harness { s in
            s.holdFinalDot = hold
            s.sizeLimit = sizeLimit
        }
        h.m.natHeader = natHeader
    }

    var all: Step { h.all }
    var m: SessionMachine { h.m }
    /// Bytes the upstream got so far.
    var serverCount: Int { h.all.toServer.count }

    /// Upstream bytes from `mark` on, as text.
    func server(since mark: Int) -> String { latin1(h.all.toServer[mark...]) }

    @discardableResult
    private func take(_ s: Step, input: [UInt8]?, _ loc: SourceLocation) -> Step {
        if serverClosed, !s.toServer.isEmpty {
            Issue.record("bytes for the server after closeServer: \(s.server.debugDescription)", sourceLocation: loc)
        }
        if clientClosed, !s.toClient.isEmpty {
            Issue.record("bytes for the client after closeClient: \(s.client.debugDescription)", sourceLocation: loc)
        }
        serverClosed = serverClosed || s.closeServer
        clientClosed = clientClosed || s.closeClient
        for out in s.raw {
            body += resolve(out.body, input: input, sourceLocation: loc)
            if out.messageStart { starts += 1 }
            if let e = out.messageEnd { ends.append(e) }
        }
        return s
    }

    @discardableResult
    func client(_ s: String, sourceLocation: SourceLocation = #_sourceLocation) -> Step {
        client(bytes: b(s), sourceLocation: sourceLocation)
    }

    @discardableResult
    func client(bytes: [UInt8], sourceLocation: SourceLocation = #_sourceLocation) -> Step {
        take(h.client(bytes: bytes, sourceLocation: sourceLocation), input: bytes, sourceLocation)
    }

    /// Feeds each piece separately (so `.input` ranges resolve against the right buffer); merged result.
    @discardableResult
    func client(pieces: [[UInt8]], sourceLocation: SourceLocation = #_sourceLocation) -> Step {
        var merged = Step()
        for p in pieces { merged.merge(client(bytes: p, sourceLocation: sourceLocation)) }
        return merged
    }

    @discardableResult
    func server(_ s: String, sourceLocation: SourceLocation = #_sourceLocation) -> Step {
        let bytes = b(s)
        return take(h.server(bytes: bytes, sourceLocation: sourceLocation), input: bytes, sourceLocation)
    }

    @discardableResult
    func verdict(_ v: MessageVerdict, scan: ScanSummary? = nil, sourceLocation: SourceLocation = #_sourceLocation) -> Step {
        let step = Step(h.m.verdict(v, scan: scan), input: nil, sourceLocation: sourceLocation)
        h.all.merge(step)
        return take(step, input: nil, sourceLocation)
    }

    @discardableResult
    func serverClosedNow(sourceLocation: SourceLocation = #_sourceLocation) -> Step {
        take(h.serverClosed(sourceLocation: sourceLocation), input: nil, sourceLocation)
    }

    @discardableResult
    func clientClosedNow(sourceLocation: SourceLocation = #_sourceLocation) -> Step {
        take(h.clientClosed(sourceLocation: sourceLocation), input: nil, sourceLocation)
    }

    @discardableResult
    func timedOut(sourceLocation: SourceLocation = #_sourceLocation) -> Step {
        take(h.timedOut(sourceLocation: sourceLocation), input: nil, sourceLocation)
    }

    @discardableResult
    func shutdown(sourceLocation: SourceLocation = #_sourceLocation) -> Step {
        take(h.shutdown(sourceLocation: sourceLocation), input: nil, sourceLocation)
    }

    /// EHLO answered with `caps`, MAIL and RCPT accepted, DATA answered 354: the machine is in the body.
    func openInData(caps: [String] = Harness.defaultCaps, sourceLocation: SourceLocation = #_sourceLocation) {
        h.open(caps: caps, sourceLocation: sourceLocation)
        startMessage(sourceLocation: sourceLocation)
    }

    /// From command mode: MAIL, RCPT, DATA, answered up to the 354.
    func startMessage(sourceLocation: SourceLocation = #_sourceLocation) {
        let s = client("MAIL FROM:<a@x.test>\r\nRCPT TO:<b@x.test>\r\nDATA\r\n", sourceLocation: sourceLocation)
        #expect(s.server == "MAIL FROM:<a@x.test>\r\nRCPT TO:<b@x.test>\r\nDATA\r\n", sourceLocation: sourceLocation)
        let before = starts
        let r = server("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n",
                       sourceLocation: sourceLocation)
        #expect(r.client == "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n",
                sourceLocation: sourceLocation)
        #expect(starts == before + (h.settings.holdFinalDot ? 1 : 0), sourceLocation: sourceLocation)
    }
}

/// The message as stored, from the stuffed body as sent: the first dot of every line that begins with one
/// goes. Written apart from `DotUnstuffer` so the two check each other.
func referenceUnstuff(_ stuffed: [UInt8]) -> [UInt8] {
    var out: [UInt8] = []
    var lineStart = true
    var i = 0
    while i < stuffed.count {
        if lineStart, stuffed[i] == 0x2e {
            i += 1
            lineStart = false
            continue
        }
        out.append(stuffed[i])
        lineStart = stuffed[i] == 0x0a && i > 0 && stuffed[i - 1] == 0x0d
        i += 1
    }
    return out
}

/// The body a conforming client sends for `message`: a dot in front of every line that begins with one.
func referenceStuff(_ message: [UInt8]) -> [UInt8] {
    var out: [UInt8] = []
    var lineStart = true
    for (i, c) in message.enumerated() {
        if lineStart, c == 0x2e { out.append(0x2e) }
        out.append(c)
        lineStart = c == 0x0a && i > 0 && message[i - 1] == 0x0d
    }
    return out
}

@Suite("holdFinalDot: the body streams to the MTA and the spool; the final dot waits for the verdict")
struct HoldFinalDotTests {
    /// Stuffed bodies as a client sends them (the terminator not included).
    static let bodies: [String] = [
        "Subject: t\r\n\r\n..leading\r\nmid.dot\r\n...\r\n.x\r\n..\r\nend\r\n",
        "",
        "\r\n",
        "..\r\n",
        "a\r\n..\r\n",
        "lone\rx\r\nmid\ndle\r\n",
        "\r\r\n..\r\r\n..\r\r\n",
        "a\r\n. \r\n..x\r\n",
    ]
    static let clean = ScanSummary(result: .clean, score: 1.5)

    /// Feeds `body + ".\r\n" + pipelined` in `pieces`, then checks the spool's view, that nothing of the
    /// terminator (or what follows it) went upstream, and the delivery of the dot and the held commands.
    static func check(body: String, pipelined: String = "", natHeader: String? = nil,
                      pieces: (([UInt8]) -> [[UInt8]]), _ label: String,
                      sourceLocation loc: SourceLocation = #_sourceLocation) {
        let stream = b(body + ".\r\n" + pipelined)
        let size = referenceUnstuff(b(body)).count
        let sh = ScanHarness(natHeader: natHeader.map(b))
        sh.openInData(sourceLocation: loc)
        let afterHeader = sh.serverCount
        let s = sh.client(pieces: pieces(stream), sourceLocation: loc)
        #expect(s.toClient.isEmpty, "\(label)", sourceLocation: loc)
        #expect(sh.server(since: afterHeader) == body, "\(label): upstream before the verdict", sourceLocation: loc)
        #expect(latin1(sh.body) == body, "\(label): spool", sourceLocation: loc)
        #expect(sh.ends == [size], "\(label): messageEnd", sourceLocation: loc)
        #expect(sh.starts == 1, "\(label)", sourceLocation: loc)
        #expect(!s.closeServer && !s.closeClient, "\(label)", sourceLocation: loc)

        let v = sh.verdict(.deliver, scan: clean, sourceLocation: loc)
        #expect(v.server == ".\r\n" + pipelined, "\(label): the dot, then the held commands", sourceLocation: loc)
        #expect(v.toClient.isEmpty, "\(label)", sourceLocation: loc)
        #expect(v.raw.first?.body == [], "\(label): the dot is not body", sourceLocation: loc)
        #expect(sh.server(since: afterHeader) == body + ".\r\n" + pipelined, "\(label)", sourceLocation: loc)

        let replies = "250 2.0.0 queued\r\n" + (pipelined.isEmpty ? "" : "250 2.1.0 Ok\r\n")
        let r = sh.server(replies, sourceLocation: loc)
        #expect(r.client == replies, "\(label)", sourceLocation: loc)
        let t = r.transactions
        #expect(t.count == 1, "\(label)", sourceLocation: loc)
        #expect(t.first?.resultCode == 250, "\(label)", sourceLocation: loc)
        #expect(t.first?.abortReason == nil, "\(label)", sourceLocation: loc)
        #expect(t.first?.size == size, "\(label)", sourceLocation: loc)
        #expect(t.first?.scan == clean, "\(label)", sourceLocation: loc)
        #expect(sh.ends == [size], "\(label): one messageEnd per message", sourceLocation: loc)
    }

    static func twoPieces(at cut: Int) -> ([UInt8]) -> [[UInt8]] {
        { s in [Array(s[..<min(cut, s.count)]), Array(s[min(cut, s.count)...])] }
    }

    static func bytewise(_ s: [UInt8]) -> [[UInt8]] { s.map { [$0] } }

    @Test(arguments: bodies)
    func splitAtEveryByte(body: String) {
        let n = b(body).count + 3
        for cut in 0...n {
            HoldFinalDotTests.check(body: body, pieces: HoldFinalDotTests.twoPieces(at: cut), "cut \(cut)")
        }
    }

    @Test(arguments: bodies)
    func splitAtEveryByteWithPipelinedMail(body: String) {
        let pipelined = "MAIL FROM:<c@x.test>\r\n"
        let n = b(body).count + 3 + b(pipelined).count
        for cut in 0...n {
            HoldFinalDotTests.check(body: body, pipelined: pipelined, pieces: HoldFinalDotTests.twoPieces(at: cut), "cut \(cut)")
        }
    }

    @Test(arguments: bodies)
    func byteByByte(body: String) {
        HoldFinalDotTests.check(body: body, pieces: HoldFinalDotTests.bytewise, "bytewise")
        HoldFinalDotTests.check(body: body, pipelined: "MAIL FROM:<c@x.test>\r\n", pieces: HoldFinalDotTests.bytewise,
                                "bytewise, pipelined")
    }

    @Test func splitIntoThreePiecesEverywhere() {
        let body = "x\r\n..\r\n...\r\n..x\r\n"
        let n = b(body).count + 3 + 6
        for i in 0...n {
            for j in i...n {
                HoldFinalDotTests.check(body: body, pipelined: "NOOP\r\n", pieces: { s in
                    [Array(s[..<i]), Array(s[i..<j]), Array(s[j...])]
                }, "cuts \(i) \(j)")
            }
        }
    }

    @Test func bodyEndingExactlyAtAChunkEdge() {
        let body = repeated(repeated("q", 76) + "\r\n..dot\r\n", 50)
        HoldFinalDotTests.check(body: body, pieces: { s in
            [Array(s[..<(s.count - 3)]), Array(s[(s.count - 3)...])]
        }, "body, then the terminator alone")
        HoldFinalDotTests.check(body: body, pieces: { s in
            [Array(s[..<(s.count - 3)]), [0x2e], [0x0d], [0x0a]]
        }, "body, then the terminator a byte at a time")
        for size in [1, 2, 3, 7, 64, 1000, 4096] {
            HoldFinalDotTests.check(body: body, pipelined: "RSET\r\n", pieces: { s in
                stride(from: 0, to: s.count, by: size).map { Array(s[$0..<min(s.count, $0 + size)]) }
            }, "chunks of \(size)")
        }
    }

    @Test func randomMessagesInRandomPieces() {
        var rng = SplitMix64(seed: 0x5CA7)
        let alphabet: [[UInt8]] = [b("a"), b("."), b("\r"), b("\n"), b("\r\n"), b("\r\n."), b("\r\n.\r")]
        for round in 0..<300 {
            var message: [UInt8] = []
            for _ in 0..<Int.random(in: 0...40, using: &rng) { message += alphabet.randomElement(using: &rng)! }
            if !message.isEmpty, !(message.count >= 2 && message.suffix(2) == [0x0d, 0x0a]) { message += b("\r\n") }
            let body = referenceStuff(message)
            #expect(referenceUnstuff(body) == message)
            let stream = body + b(".\r\nNOOP\r\n")
            var cuts = (0..<Int.random(in: 0...6, using: &rng)).map { _ in Int.random(in: 0...stream.count, using: &rng) }
            cuts.sort()
            let pieces: ([UInt8]) -> [[UInt8]] = { s in
                var out: [[UInt8]] = []
                var from = 0
                for c in cuts + [s.count] {
                    out.append(Array(s[from..<c]))
                    from = c
                }
                return out
            }
            if HoldFinalDotTests.smuggles(body) {
                let sh = ScanHarness()
                sh.openInData()
                let mark = sh.serverCount
                let end = sh.client(pieces: pieces(stream))
                #expect(end.client.hasPrefix("550 5.6.0 "), "round \(round) cuts \(cuts)")
                #expect(sh.all.closeServer && sh.ends.isEmpty, "round \(round) cuts \(cuts)")
                #expect(!sh.server(since: mark).contains("NOOP"), "round \(round) cuts \(cuts)")
            } else {
                HoldFinalDotTests.check(body: latin1(body), pipelined: "NOOP\r\n", pieces: pieces, "round \(round) cuts \(cuts)")
            }
        }
    }

    /// Whether a stuffed body has a dot that some MTA could read as a line-start dot ending a line: after a
    /// bare CR or LF, or after CRLF and followed by a bare CR or LF (written apart from `BareNewlineDot`).
    static func smuggles(_ body: [UInt8]) -> Bool {
        let s = b("\r\n") + body + b(".\r\n")
        for i in 2..<s.count where s[i] == 0x2e {
            let (p2, p1) = (s[i - 2], s[i - 1])
            let n1: UInt8? = i + 1 < s.count ? s[i + 1] : nil, n2: UInt8? = i + 2 < s.count ? s[i + 2] : nil
            if p1 == 0x0d || (p1 == 0x0a && p2 != 0x0d) { return true }
            if p1 == 0x0a, n1 == 0x0a || (n1 == 0x0d && n2 != 0x0a) { return true }
        }
        return false
    }

    @Test func bodyIsHandedOnAsInputRanges() {
        let sh = ScanHarness()
        sh.openInData()
        let s = sh.client("hello\r\nworld\r\n")
        #expect(s.server == "hello\r\nworld\r\n")
        #expect(s.raw[0].body == [.input(0..<14)], "the spool gets ranges of the input, no copy")
        #expect(ownedByteCount(s.raw[0].toServer) == 0)
        #expect(s.raw[0].messageEnd == nil)
        let end = sh.client(".\r\n")
        #expect(end.toServer.isEmpty)
        #expect(end.raw[0].body.isEmpty)
        #expect(end.raw[0].messageEnd == 14)
    }

    @Test func heldPrefixTurnsOutToBeBody() {
        let sh = ScanHarness()
        sh.openInData()
        #expect(sh.client("a\r\n.").server == "a\r\n", "a dot at a line start may begin the terminator")
        let s = sh.client("x\r\n")
        #expect(s.server == ".x\r\n", "it was not the terminator: sent on, in order")
        #expect(latin1(sh.body) == "a\r\n.x\r\n")
        #expect(sh.ends.isEmpty)
        #expect(sh.client(".").toServer.isEmpty)
        #expect(sh.client(".\r\n").server == "..\r\n", "a stuffed dot line")
        #expect(sh.client(".").toServer.isEmpty)
        #expect(sh.client("\r").toServer.isEmpty, "so may the dot and a CR")
        #expect(sh.client("\n").toServer.isEmpty, "the terminator waits for the verdict")
        #expect(latin1(sh.body) == "a\r\n.x\r\n..\r\n")
        #expect(sh.ends == [b("a\r\nx\r\n.\r\n").count])
    }

    @Test func bodyPipelinedWithDataIsHeldThenStreamedOn354() {
        let sh = ScanHarness(natHeader: b("X-Nat: 1\r\n"))
        sh.h.open()
        sh.client("MAIL FROM:<a@x.test>\r\nRCPT TO:<b@x.test>\r\n")
        sh.server("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n")
        let s = sh.client("DATA\r\n..one\r\ntwo\r\n.\r\nQUIT\r\n")
        #expect(s.server == "DATA\r\n")
        #expect(sh.body.isEmpty)
        let r = sh.server("354 go\r\n")
        #expect(r.client == "354 go\r\n")
        #expect(r.server == "X-Nat: 1\r\n..one\r\ntwo\r\n", "header, body; not the dot, not the QUIT")
        #expect(r.raw[0].messageStart)
        #expect(r.raw[0].messageEnd == 11)
        #expect(latin1(sh.body) == "..one\r\ntwo\r\n")
        let v = sh.verdict(.deliver, scan: HoldFinalDotTests.clean)
        #expect(v.server == ".\r\nQUIT\r\n")
        let f = sh.server("250 2.0.0 queued\r\n221 2.0.0 bye\r\n")
        #expect(f.client == "250 2.0.0 queued\r\n221 2.0.0 bye\r\n")
        #expect(f.transactions.first?.resultCode == 250)
        #expect(f.transactions.first?.size == 11)
        #expect(sh.m.closeReason == "quit")
    }

    @Test func pipelinedSecondTransactionIsHeldUntilTheFirstIsDelivered() {
        let sh = ScanHarness()
        sh.openInData()
        let s = sh.client("first\r\n.\r\nMAIL FROM:<c@x.test>\r\nRCPT TO:<d@x.test>\r\nDATA\r\n")
        #expect(s.server == "first\r\n")
        #expect(sh.ends == [7])
        let v = sh.verdict(.deliver)
        #expect(v.server == ".\r\nMAIL FROM:<c@x.test>\r\nRCPT TO:<d@x.test>\r\nDATA\r\n")
        let r = sh.server("250 2.0.0 queued 1\r\n250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 go\r\n")
        #expect(r.client == "250 2.0.0 queued 1\r\n250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 go\r\n")
        #expect(sh.starts == 2)
        #expect(r.transactions.map(\.number) == [1])
        let mark = sh.serverCount
        let second = sh.client(".second\r\n.\r\n")
        #expect(second.server == ".second\r\n")
        #expect(sh.server(since: mark) == ".second\r\n")
        #expect(sh.ends == [7, 8], "the stuffing dot is not counted")
        #expect(latin1(sh.body) == "first\r\n.second\r\n")
        #expect(sh.verdict(.deliver).server == ".\r\n")
        let r2 = sh.server("250 2.0.0 queued 2\r\n")
        #expect(r2.client == "250 2.0.0 queued 2\r\n")
        #expect(r2.transactions.map(\.number) == [2])
        #expect(r2.transactions.first?.size == 8)
    }

    @Test func dataRefusedStartsNoMessage() {
        let sh = ScanHarness()
        sh.h.open()
        sh.client("MAIL FROM:<a@x.test>\r\nRCPT TO:<b@x.test>\r\nDATA\r\n")
        let r = sh.server("250 ok\r\n250 ok\r\n554 5.5.1 no valid recipients\r\n")
        #expect(r.client == "250 ok\r\n250 ok\r\n554 5.5.1 no valid recipients\r\n")
        #expect(sh.starts == 0)
        #expect(sh.client("NOOP\r\n").server == "NOOP\r\n", "still in command mode")
        #expect(sh.verdict(.deliver).raw.first == MachineOutput(), "no message, no verdict")
    }

    @Test func verdictBeforeTheMessageEndedDoesNothing() {
        let sh = ScanHarness()
        sh.openInData()
        sh.client("part\r\n.")
        #expect(sh.verdict(.deliver).raw.first == MachineOutput())
        #expect(sh.verdict(.virus("X")).raw.first == MachineOutput())
        #expect(sh.client("\r\n").toServer.isEmpty)
        #expect(sh.ends == [6])
        #expect(sh.verdict(.deliver).server == ".\r\n")
    }

    @Test func sizeLimitWithAScannerNeverEndsTheMessage() {
        let sh = ScanHarness(sizeLimit: 10)
        sh.openInData()
        let s = sh.client(repeated("z", 20) + "\r\n.\r\nQUIT\r\n")
        #expect(s.toServer.isEmpty)
        #expect(s.closeServer)
        #expect(s.client == "552 5.3.4 \(PN): message size exceeds fixed limit (size_limit 10)\r\n221 2.0.0 \(PN): closing connection\r\n")
        #expect(sh.ends.isEmpty, "no verdict is asked for a message that is refused anyway")
        #expect(sh.verdict(.deliver).raw.first == MachineOutput())
    }

    // MARK: holdFinalDot off

    @Test(arguments: bodies)
    func withoutAScannerTheDotGoesWithTheBody(body: String) {
        let stream = b(body + ".\r\nNOOP\r\n")
        for cut in 0...stream.count {
            let sh = ScanHarness(hold: false)
            sh.openInData()
            let mark = sh.serverCount
            let s = sh.client(pieces: [Array(stream[..<cut]), Array(stream[cut...])])
            #expect(sh.server(since: mark) == body + ".\r\nNOOP\r\n", "cut \(cut)")
            #expect(s.raw.allSatisfy { $0.body.isEmpty && !$0.messageStart && $0.messageEnd == nil }, "cut \(cut)")
            #expect(sh.starts == 0 && sh.ends.isEmpty && sh.body.isEmpty, "cut \(cut)")
            #expect(sh.verdict(.deliver).raw.first == MachineOutput(), "cut \(cut): nothing awaits a verdict")
            let r = sh.server("250 2.0.0 queued\r\n250 2.0.0 ok\r\n")
            #expect(r.client == "250 2.0.0 queued\r\n250 2.0.0 ok\r\n", "cut \(cut)")
            #expect(r.transactions.first?.resultCode == 250, "cut \(cut)")
            #expect(r.transactions.first?.size == referenceUnstuff(b(body)).count, "cut \(cut)")
            #expect(r.transactions.first?.scan == nil, "cut \(cut)")
        }
    }

    @Test func settingsFromConfigHoldTheDotOnlyWithAScanner() throws {
        var c = Config()
        c.mode = .fixed
        #expect(SessionSettings(config: c, hostName: "h").holdFinalDot == false)
        c.antivirusType = .clamd
        #expect(SessionSettings(config: c, hostName: "h").holdFinalDot == true)
        c.antivirusType = .none
        c.antispamType = .spamassassin
        #expect(SessionSettings(config: c, hostName: "h").holdFinalDot == true)
    }
}
