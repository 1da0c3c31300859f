import Testing
@testable import SMTPGateCore

@Suite("spamd CHECK: request header and answer parsing")
struct SpamdProtocolTests {
    func read(_ text: String) -> SpamdReply {
        read(b(text))
    }

    func read(_ bytes: [UInt8]) -> SpamdReply {
        var reader = SpamdReplyReader()
        return reader.feed(bytes) ?? reader.end()
    }

    @Test func requestHeaderIsExact() {
        #expect(SpamdProtocol.checkRequest(contentLength: 1234).map(latin1) == "CHECK SPAMC/1.5\r\nContent-length: 1234\r\n\r\n")
        #expect(SpamdProtocol.checkRequest(contentLength: 0).map(latin1) == "CHECK SPAMC/1.5\r\nContent-length: 0\r\n\r\n")
        #expect(SpamdProtocol.checkRequest(contentLength: 7, user: "mail-filter").map(latin1)
            == "CHECK SPAMC/1.5\r\nContent-length: 7\r\nUser: mail-filter\r\n\r\n")
    }

    @Test func unsafeUserIsRefused() {
        for user in ["", "a b", "x\r\nContent-length: 1", "tab\t", "caf\u{e9}", String(repeating: "u", count: 256)] {
            #expect(SpamdProtocol.checkRequest(contentLength: 1, user: user) == nil, "\(user)")
        }
    }

    @Test func everyAnswerForm() {
        #expect(read("SPAMD/1.1 0 EX_OK\r\nSpam: True ; 1000.0 / 5.0\r\n\r\n") == .score(1000))
        #expect(read("SPAMD/1.1 0 EX_OK\r\nSpam: False ; 2.3 / 5.0\r\n\r\n") == .score(2.3))
        #expect(read("SPAMD/1.1 0 EX_OK\r\nSpam: False ; -1.9 / 5.0\r\n\r\n") == .score(-1.9))
        #expect(read("SPAMD/1.5 0 EX_OK\r\nContent-length: 0\r\nSpam: Yes ; 7.0 / 5.0\r\n\r\n") == .score(7))
        // Header case, bare LF, spacing, and headers spamd may add.
        #expect(read("SPAMD/1.1 0 EX_OK\nX-Extra: 1\nspam:false;0.0/5.0\nDidSet: local\n\n") == .score(0))
        #expect(read("SPAMD/1.1 0 EX_OK\r\nSPAM:  TRUE ;  12.5 /  5.0 \r\n\r\n") == .score(12.5))
        #expect(read("SPAMD/1.0 76 Bad header line: (Content-Length contains non-numeric bytes)\r\n")
            == .error("76 Bad header line: (Content-Length contains non-numeric bytes)"))
        #expect(read("SPAMD/1.0 79 Timeout: (30 second timeout while trying to CHECK)\r\n")
            == .error("79 Timeout: (30 second timeout while trying to CHECK)"))
        #expect(read("SPAMD/1.1 64\r\n") == .error("64"))
    }

    @Test func resultsReadAsReasons() {
        #expect(SpamdReply.score(3.5).result == .score(3.5))
        #expect(SpamdReply.error("76 Bad header line").result == .failed("spamd error: 76 Bad header line"))
        #expect(SpamdReply.unreadable.result == .failed("unreadable answer"))
        #expect(SpamdReply.noAnswer.result == .failed("closed without an answer"))
    }

    @Test func errorStatusIsTakenAtOnce() {
        var reader = SpamdReplyReader()
        #expect(reader.feed(b("SPAMD/1.0 74 Service Unavailable: busy\r\n")) == .error("74 Service Unavailable: busy"))
    }

    @Test func successWaitsForTheBlankLine() {
        var reader = SpamdReplyReader()
        #expect(reader.feed(b("SPAMD/1.1 0 EX_OK\r\n")) == nil)
        #expect(reader.feed(b("Spam: True ; 9.0 / 5.0\r\n")) == nil)
        #expect(reader.feed(b("\r\n")) == .score(9))
        #expect(reader.feed(b("ignored after the answer")) == .score(9))
    }

    @Test func connectionEnds() {
        #expect(SpamdReplyReader().end() == .noAnswer)
        // The Spam line complete but no blank line: the score is whole.
        var whole = SpamdReplyReader()
        #expect(whole.feed(b("SPAMD/1.1 0 EX_OK\r\nSpam: True ; 6.0 / 5.0\r\n")) == nil)
        #expect(whole.end() == .score(6))
        // The Spam line cut: "1" could have been "1000.0".
        var cut = SpamdReplyReader()
        #expect(cut.feed(b("SPAMD/1.1 0 EX_OK\r\nSpam: True ; 1")) == nil)
        #expect(cut.end() == .unreadable)
        var statusOnly = SpamdReplyReader()
        #expect(statusOnly.feed(b("SPAMD/1.1 0 EX_OK\r\n")) == nil)
        #expect(statusOnly.end() == .unreadable)
        var partialStatus = SpamdReplyReader()
        #expect(partialStatus.feed(b("SPAMD/1.1 0 EX")) == nil)
        #expect(partialStatus.end() == .unreadable)
    }

    @Test func garbageIsUnreadable() {
        for answer in [
            "\r\n\r\n",
            "stream: OK\u{0}",
            "220 mail.example ESMTP\r\n",
            "HTTP/1.1 200 OK\r\nSpam: True ; 1.0 / 5.0\r\n\r\n",
            "SPAMD/ 0 EX_OK\r\nSpam: True ; 1.0 / 5.0\r\n\r\n",
            "SPAMD/1 0 EX_OK\r\nSpam: True ; 1.0 / 5.0\r\n\r\n",
            "SPAMD/1.1 x EX_OK\r\nSpam: True ; 1.0 / 5.0\r\n\r\n",
            "SPAMD/1.1 0 EX_OK\r\n\r\n",
            "SPAMD/1.1 0 EX_OK\r\nContent-length: 0\r\n\r\n",
            "SPAMD/1.1 0 EX_OK\r\nno colon here\r\nSpam: True ; 1.0 / 5.0\r\n\r\n",
            "SPAMD/1.1 0 EX_OK\r\n: empty name\r\nSpam: True ; 1.0 / 5.0\r\n\r\n",
            "SPAMD/1.1 0 EX_OK\r\nSpam: Maybe ; 1.0 / 5.0\r\n\r\n",
            "SPAMD/1.1 0 EX_OK\r\nSpam: True 1.0 / 5.0\r\n\r\n",
            "SPAMD/1.1 0 EX_OK\r\nSpam: True ; 1.0\r\n\r\n",
            "SPAMD/1.1 0 EX_OK\r\nSpam: True ; 1.0 / \r\n\r\n",
            "SPAMD/1.1 0 EX_OK\r\nSpam: True ; / 5.0\r\n\r\n",
            "SPAMD/1.1 0 EX_OK\r\nSpam: True ; 1.0 / 5.0 / 6\r\n\r\n",
            "SPAMD/1.1 0 EX_OK\r\nSpam: True ; 1.0 / 5.0\r\nSpam: False ; 0.0 / 5.0\r\n\r\n",
        ] {
            #expect(read(answer) == .unreadable, "\(answer)")
        }
    }

    @Test func nonFiniteOrOddNumbersAreUnreadable() {
        for score in ["nan", "NaN", "inf", "-inf", "infinity", "0x1p3", "1e3", "1,5", "", " ", "--1", "1.2.3",
                      String(repeating: "9", count: 40)] {
            #expect(read("SPAMD/1.1 0 EX_OK\r\nSpam: True ; \(score) / 5.0\r\n\r\n") == .unreadable, "\(score)")
            #expect(read("SPAMD/1.1 0 EX_OK\r\nSpam: True ; 1.0 / \(score)\r\n\r\n") == .unreadable, "\(score)")
        }
        #expect(read("SPAMD/1.1 0 EX_OK\r\nSpam: True ; +3 / 5\r\n\r\n") == .score(3))
    }

    @Test func nulAndBinaryInside() {
        #expect(read(b("SPAMD/1.1 0 EX_OK\r\nSpam: True ; 1") + [0] + b("0.0 / 5.0\r\n\r\n")) == .unreadable)
        #expect(read(b("SPAMD/1.1 0 EX_OK\r\nX-\u{0}: y\r\nSpam: True ; 1.0 / 5.0\r\n\r\n")) == .unreadable)
        // Binary in another header's value is tolerated: only its name is checked.
        #expect(read(b("SPAMD/1.1 0 EX_OK\r\nX-Junk: ") + [0, 0xff, 0x1b] + b("\r\nSpam: True ; 1.0 / 5.0\r\n\r\n")) == .score(1))
    }

    @Test func errorTextIsMadeSafe() {
        guard case .error(let text) = read(b("SPAMD/1.0 76 Bad\u{1b}[0m %n \"x\" \\ ") + [0xff] + b(String(repeating: "z", count: 500)) + b("\r\n")) else {
            Issue.record("not read as an error")
            return
        }
        #expect(text.hasPrefix("76 Bad?[0m ?n ?x? ? ?zzz"))
        #expect(text.utf8.allSatisfy { (0x20...0x7e).contains($0) })
        #expect(text.utf8.count <= SpamdProtocol.maxErrorText + 4)
    }

    @Test func hugeAnswerIsBounded() {
        var reader = SpamdReplyReader()
        #expect(reader.feed(b("SPAMD/1.1 0 EX_OK\r\n")) == nil)
        var answer: SpamdReply?
        var fed = 0
        let header = b("X-Filler: " + String(repeating: "f", count: 100) + "\r\n")
        while answer == nil, fed < 100_000 {
            answer = reader.feed(header)
            fed += header.count
        }
        #expect(answer == .unreadable)
        #expect(fed <= SpamdProtocol.maxHeader + header.count)
        var noNewline = SpamdReplyReader()
        #expect(noNewline.feed([UInt8](repeating: UInt8(ascii: "S"), count: SpamdProtocol.maxHeader)) == nil)
        #expect(noNewline.feed([UInt8(ascii: "S")]) == .unreadable)
    }

    @Test func answerInPiecesMatchesWhole() {
        let whole = b("SPAMD/1.1 0 EX_OK\r\nContent-length: 0\r\nSpam: True ; 1000.0 / 5.0\r\n\r\n")
        for size in 1...7 {
            var reader = SpamdReplyReader()
            var answer: SpamdReply?
            var start = 0
            while answer == nil, start < whole.count {
                answer = reader.feed(whole[start..<min(whole.count, start + size)])
                start += size
            }
            #expect(answer == .score(1000), "pieces of \(size)")
        }
    }

    @Test func randomBytesNeverTrap() {
        var rng = SplitMix64(seed: 0x5BA3D)
        let alphabet = b("SPAMD/1.0 EX_OK\r\nSpam: True;/-")
        for _ in 0..<20_000 {
            var prefix = Bool.random(using: &rng) ? b("SPAMD/1.1 0 EX_OK\r\n") : []
            prefix += (0..<Int.random(in: 0...80, using: &rng)).map { _ in
                Bool.random(using: &rng) ? UInt8.random(in: 0...255, using: &rng) : alphabet[Int.random(in: 0..<alphabet.count, using: &rng)]
            }
            switch read(prefix) {
            case .score(let value):
                #expect(value.isFinite)
            case .error(let text):
                #expect(text.utf8.allSatisfy { (0x20...0x7e).contains($0) })
            case .unreadable, .noAnswer:
                break
            }
        }
    }
}
