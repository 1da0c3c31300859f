import Testing
@testable import SMTPGateCore

@Suite("nat_header: the real client's header, first in the message")
struct NatHeaderTests {
    static func make(_ type: Config.NatHeaderType, name: String = "X-Nat-Received", client: String = "192.0.2.7",
                     port: Int? = 40123, ident: String? = "alice", proxy: String = "gate.test",
                     session: String = "S1a2b", abuse: String? = nil) -> String? {
        NatHeader.make(type: type, name: name, client: client, clientPort: port, ident: ident, proxyName: proxy,
                       session: session, abuse: abuse).map { latin1($0) }
    }

    /// Header lines end in CRLF and nothing else; every line after the first is a continuation (starts
    /// with a tab), so nothing in it can begin a header of its own; every other byte is printable ASCII.
    static func expectOneWellFormedHeader(_ text: String?, name: String, sourceLocation: SourceLocation = #_sourceLocation) {
        guard let text else {
            Issue.record("no header", sourceLocation: sourceLocation)
            return
        }
        let bytes = b(text)
        #expect(text.hasPrefix(name + ": "), sourceLocation: sourceLocation)
        #expect(text.hasSuffix("\r\n"), sourceLocation: sourceLocation)
        for (i, c) in bytes.enumerated() {
            switch c {
            case 0x0d:
                #expect(i + 1 < bytes.count && bytes[i + 1] == 0x0a, "bare CR at \(i)", sourceLocation: sourceLocation)
            case 0x0a:
                #expect(i > 0 && bytes[i - 1] == 0x0d, "bare LF at \(i)", sourceLocation: sourceLocation)
                if i + 1 < bytes.count {
                    #expect(bytes[i + 1] == 0x09, "a line that is not a continuation at \(i + 1)", sourceLocation: sourceLocation)
                }
            case 0x09:
                #expect(i > 0 && bytes[i - 1] == 0x0a, "a tab inside a line at \(i)", sourceLocation: sourceLocation)
            default:
                #expect((0x20..<0x7f).contains(c), "byte \(c) at \(i)", sourceLocation: sourceLocation)
            }
        }
    }

    @Test func noneMakesNoHeader() {
        #expect(NatHeaderTests.make(.none) == nil)
    }

    @Test func ipOnly() {
        #expect(NatHeaderTests.make(.ipOnly) == "X-Nat-Received: 192.0.2.7\r\n")
        #expect(NatHeaderTests.make(.ipOnly, client: "2001:db8::7", abuse: "abuse@example.net")
            == "X-Nat-Received: 2001:db8::7\r\n", "one line: no port, ident or abuse")
    }

    @Test func generic() {
        #expect(NatHeaderTests.make(.generic)
            == "X-Nat-Received: from [192.0.2.7]:40123 [ident alice]\r\n\tby gate.test with SMTPGate id S1a2b\r\n")
    }

    @Test func genericWithoutIdentOrPort() {
        #expect(NatHeaderTests.make(.generic, port: nil, ident: nil)
            == "X-Nat-Received: from [192.0.2.7] [ident-empty]\r\n\tby gate.test with SMTPGate id S1a2b\r\n")
    }

    @Test func genericIPv6WithAbuse() {
        #expect(NatHeaderTests.make(.generic, name: "X-Client", client: "2001:db8::7", port: 25, abuse: "abuse@example.net")
            == "X-Client: from [2001:db8::7]:25 [ident alice]\r\n\tby gate.test with SMTPGate id S1a2b\r\n\tabuse-to abuse@example.net\r\n")
    }

    @Test(arguments: [
        "evil\r\nBcc: victim@example.net",
        "evil\nBcc: x", "evil\rBcc: x", "\r\n\r\nbody", "tab\there", "nul\u{0}x", "del\u{7f}", "é ünï", "\u{2028}x",
        "]\r\n.\r\n", String(repeating: "\r\n", count: 300),
    ])
    func hostileTextCannotStartALine(text: String) {
        for type in [Config.NatHeaderType.generic, .ipOnly] {
            let h = NatHeaderTests.make(type, client: text, ident: text, proxy: text, session: text, abuse: text)
            NatHeaderTests.expectOneWellFormedHeader(h, name: "X-Nat-Received")
            let lines = h?.split(separator: "\r\n", omittingEmptySubsequences: false) ?? []
            #expect(lines.count == (type == .generic ? 4 : 2), "\(type): lines plus the empty tail")
        }
    }

    @Test func hostileIdentBecomesQuestionMarks() {
        #expect(NatHeaderTests.make(.generic, ident: "a\r\nBcc: x\u{0}é")
            == "X-Nat-Received: from [192.0.2.7]:40123 [ident a??Bcc: x???]\r\n\tby gate.test with SMTPGate id S1a2b\r\n")
    }

    @Test func longTextIsCut() {
        let h = NatHeaderTests.make(.generic, ident: repeated("i", 1000), abuse: repeated("a", 5000))
        #expect(h == "X-Nat-Received: from [192.0.2.7]:40123 [ident \(repeated("i", 200))]\r\n"
            + "\tby gate.test with SMTPGate id S1a2b\r\n\tabuse-to \(repeated("a", 200))\r\n")
    }

    @Test func printable() {
        #expect(NatHeader.printable("ok text ~!") == "ok text ~!")
        #expect(NatHeader.printable("\t\r\n\u{0}\u{1f}\u{7f}") == "??????")
        #expect(NatHeader.printable("ü") == "??", "each byte of a UTF-8 sequence")
        #expect(NatHeader.printable(repeated("x", 201)).utf8.count == 200)
    }

    // MARK: in the session

    static let header = "X-Nat-Received: from [192.0.2.7]:40123 [ident-empty]\r\n\tby gate.test with SMTPGate id S1\r\n"

    @Test(arguments: [true, false])
    func headerGoesRightAfter354BeforeTheBody(hold: Bool) {
        let sh = ScanHarness(hold: hold, natHeader: b(NatHeaderTests.header))
        sh.h.open()
        #expect(sh.client("MAIL FROM:<a@x.test>\r\nRCPT TO:<b@x.test>\r\nDATA\r\n").server
            == "MAIL FROM:<a@x.test>\r\nRCPT TO:<b@x.test>\r\nDATA\r\n", "no header before the 354")
        let r = sh.server("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 go ahead\r\n")
        #expect(r.server == NatHeaderTests.header, "the header, and only it, as the 354 arrives")
        #expect(r.client == "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 go ahead\r\n")
        let s = sh.client("Subject: hi\r\n\r\nbody\r\n.\r\n")
        #expect(s.server == "Subject: hi\r\n\r\nbody\r\n" + (hold ? "" : ".\r\n"))
        if hold {
            #expect(latin1(sh.body) == "Subject: hi\r\n\r\nbody\r\n", "the spool holds the client's message only")
            #expect(sh.ends == [21], "the header is not counted")
            #expect(sh.verdict(.deliver).server == ".\r\n")
        }
        let f = sh.server("250 2.0.0 queued\r\n")
        #expect(f.transactions.first?.size == 21)
    }

    @Test(arguments: [true, false])
    func headerBeforeABodyThatWasHeldForThe354(hold: Bool) {
        let sh = ScanHarness(hold: hold, natHeader: b(NatHeaderTests.header))
        sh.h.open()
        sh.client("MAIL FROM:<a@x.test>\r\nRCPT TO:<b@x.test>\r\n")
        sh.server("250 ok\r\n250 ok\r\n")
        #expect(sh.client("DATA\r\n.dotted\r\n.\r\n").server == "DATA\r\n")
        let r = sh.server("354 go\r\n")
        #expect(r.server == NatHeaderTests.header + ".dotted\r\n" + (hold ? "" : ".\r\n"))
    }

    @Test func headerInEveryMessageOnlyAfter354() {
        let sh = ScanHarness(hold: false, natHeader: b("X-N: 1\r\n"))
        sh.h.open()
        sh.client("MAIL FROM:<a@x.test>\r\nRCPT TO:<b@x.test>\r\nDATA\r\n")
        let refused = sh.server("250 ok\r\n250 ok\r\n554 5.5.1 no valid recipients\r\n")
        #expect(refused.toServer.isEmpty, "no 354, no header")
        for n in 1...2 {
            let mark = sh.serverCount
            sh.startMessage()
            sh.client("m\(n)\r\n.\r\n")
            sh.server("250 queued\r\n")
            #expect(sh.server(since: mark) == "MAIL FROM:<a@x.test>\r\nRCPT TO:<b@x.test>\r\nDATA\r\nX-N: 1\r\nm\(n)\r\n.\r\n")
        }
    }

    @Test func noHeaderByDefault() {
        let sh = ScanHarness()
        sh.openInData()
        #expect(sh.m.natHeader == nil)
        let mark = sh.serverCount
        sh.client("x\r\n.\r\n")
        #expect(sh.server(since: mark) == "x\r\n")
    }
}
