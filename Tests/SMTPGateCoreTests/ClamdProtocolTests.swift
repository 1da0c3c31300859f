import Testing
@testable import SMTPGateCore

@Suite("clamd INSTREAM: request framing and reply parsing")
struct ClamdProtocolTests {
    func read(_ bytes: [UInt8]) -> ClamdReply? {
        var reader = ClamdReplyReader()
        return reader.feed(bytes)
    }

    @Test func requestFramingIsExact() {
        #expect(ClamdProtocol.command == b("zINSTREAM") + [0])
        #expect(ClamdProtocol.chunkHeader(length: 1) == [0, 0, 0, 1])
        #expect(ClamdProtocol.chunkHeader(length: 65536) == [0, 1, 0, 0])
        #expect(ClamdProtocol.chunkHeader(length: 0x0102_0304) == [1, 2, 3, 4])
        #expect(ClamdProtocol.request(for: b("hello"), chunkSize: 2)
            == b("zINSTREAM") + [0] + [0, 0, 0, 2] + b("he") + [0, 0, 0, 2] + b("ll") + [0, 0, 0, 1] + b("o") + [0, 0, 0, 0])
        #expect(ClamdProtocol.request(for: b("abc"), chunkSize: 65536) == b("zINSTREAM") + [0, 0, 0, 0, 3] + b("abc") + [0, 0, 0, 0])
        // An empty message is the command and the end mark only: no zero-length chunk before it.
        #expect(ClamdProtocol.request(for: [], chunkSize: 10) == b("zINSTREAM") + [0, 0, 0, 0, 0])
    }

    @Test func everyReplyForm() {
        #expect(read(b("stream: OK") + [0]) == .clean)
        #expect(read(b("stream: OK\n")) == .clean)
        #expect(read(b("stream: OK\r\n")) == .clean)
        #expect(read(b("stream: Eicar-Test-Signature FOUND") + [0]) == .virus("Eicar-Test-Signature"))
        #expect(read(b("stream: eicar.com.UNOFFICIAL FOUND\n")) == .virus("eicar.com.UNOFFICIAL"))
        #expect(read(b("stream: Win.Test.EICAR_HDB-1(44d88612fea8a8f36de82e1278abb02f:68) FOUND") + [0])
            == .virus("Win.Test.EICAR_HDB-1(44d88612fea8a8f36de82e1278abb02f:68)"))
        #expect(read(b("INSTREAM size limit exceeded. ERROR") + [0]) == .error("INSTREAM size limit exceeded."))
        #expect(read(b("stream: Can't allocate memory ERROR") + [0]) == .error("Can't allocate memory"))
        #expect(read(b("ERROR") + [0]) == .error("unspecified"))
        #expect(read(b("stream:  ERROR") + [0]) == .error("unspecified"))
    }

    @Test func resultsReadAsReasons() {
        #expect(ClamdReply.clean.result == .clean)
        #expect(ClamdReply.virus("X").result == .virus("X"))
        #expect(ClamdReply.error("INSTREAM size limit exceeded.").result == .failed("clamd error: INSTREAM size limit exceeded."))
        #expect(ClamdReply.unreadable.result == .failed("unreadable answer"))
        #expect(ClamdReply.noAnswer.result == .failed("closed without an answer"))
    }

    @Test func garbageIsUnreadable() {
        for reply in ["stream: ok", "stream: OKAY", "OK", "stream:", "stream: FOUND", "stream:  FOUND", "UNKNOWN COMMAND",
                      "PONG", "stream: X FOUNDED", "", " stream: OK", "220 mail.example ESMTP",
                      "SPAMD/1.1 0 EX_OK"] {
            #expect(read(b(reply) + [0]) == .unreadable, "\(reply)")
        }
    }

    @Test func replyArrivesInPieces() {
        var reader = ClamdReplyReader()
        for byte in b("stream: Some.Virus FOUND") { #expect(reader.feed([byte]) == nil) }
        #expect(reader.end() == .unreadable, "cut short before the terminator")
        #expect(reader.feed([0]) == .virus("Some.Virus"))
        // Bytes after the first reply change nothing.
        #expect(reader.feed(b("stream: OK") + [0]) == .virus("Some.Virus"))
        #expect(reader.end() == .virus("Some.Virus"))
    }

    @Test func connectionEnds() {
        #expect(ClamdReplyReader().end() == .noAnswer)
        var reader = ClamdReplyReader()
        #expect(reader.feed(b("stream: OK")) == nil)
        #expect(reader.end() == .unreadable, "no terminator: not trusted as clean")
    }

    @Test func nulInsideEndsTheReply() {
        #expect(read(b("stream: OK") + [0] + b("stream: Evil FOUND") + [0]) == .clean)
        #expect(read(b("stream: Ev") + [0] + b("il FOUND") + [0]) == .unreadable)
    }

    @Test func hugeReplyIsBounded() {
        var reader = ClamdReplyReader()
        let chunk = [UInt8](repeating: UInt8(ascii: "A"), count: 1000)
        var answer: ClamdReply?
        var fed = 0
        while answer == nil, fed < 100_000 {
            answer = reader.feed(chunk)
            fed += chunk.count
        }
        #expect(answer == .unreadable)
        #expect(fed <= ClamdProtocol.maxReply + chunk.count)
        // A real-looking reply just under the bound still parses, with its name cut to the limit.
        let long = b("stream: ") + [UInt8](repeating: UInt8(ascii: "V"), count: 4000) + b(" FOUND") + [0]
        #expect(read(long) == .virus(String(repeating: "V", count: ClamdProtocol.maxNameLength)))
    }

    @Test func virusNameIsMadeSafe() {
        let hostile = b("stream: Evil\r250 OK\u{1b}[31m%s\"\\\u{e9} name FOUND") + [0]
        guard case .virus(let name) = read(hostile) else {
            Issue.record("not read as a virus")
            return
        }
        #expect(name == "Evil?250_OK?[31m?s????_name")
        #expect(name.utf8.allSatisfy { (0x21...0x7e).contains($0) })
        let binary = b("stream: ") + (1...255).map { UInt8($0) }.filter { $0 != 10 } + b(" FOUND") + [0]
        guard case .virus(let safe) = read(binary) else {
            Issue.record("binary name not read as a virus")
            return
        }
        #expect(safe.utf8.allSatisfy { (0x21...0x7e).contains($0) && $0 != UInt8(ascii: "%") && $0 != UInt8(ascii: "\\") })
        #expect(safe.utf8.count <= ClamdProtocol.maxNameLength)
    }

    @Test func errorTextIsMadeSafe() {
        #expect(read(b("bad\u{7}\u{ff} thing ERROR\n")) == .error("bad??? thing"))
    }

    @Test func randomBytesNeverTrap() {
        var rng = SplitMix64(seed: 0xC1A4D)
        for _ in 0..<20_000 {
            var reader = ClamdReplyReader()
            let bytes = (0..<Int.random(in: 0...64, using: &rng)).map { _ in
                Bool.random(using: &rng) ? UInt8.random(in: 0...255, using: &rng) : b("stream: OKFUNDER ")[Int.random(in: 0..<17, using: &rng)]
            }
            let reply = reader.feed(bytes) ?? reader.end()
            switch reply {
            case .virus(let text), .error(let text):
                #expect(!text.isEmpty && text.utf8.allSatisfy { (0x20...0x7e).contains($0) })
            case .clean, .unreadable, .noAnswer:
                break
            }
        }
    }
}
