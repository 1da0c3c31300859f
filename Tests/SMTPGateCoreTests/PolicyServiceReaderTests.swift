import Testing
@testable import SMTPGateCore

@Suite("Policy service: reply reader")
struct PolicyServiceReaderTests {
    func read(_ text: String) -> PolicyServiceResponse {
        read(b(text))
    }

    func read(_ bytes: [UInt8]) -> PolicyServiceResponse {
        var reader = PolicyServiceReader()
        return reader.feed(bytes) ?? reader.end()
    }

    @Test func postgreysAnswers() {
        #expect(read("action=DEFER_IF_PERMIT Greylisted, see http://postgrey.schweikert.ch/help/example.net.html\n\n")
            == .action("DEFER_IF_PERMIT Greylisted, see http://postgrey.schweikert.ch/help/example.net.html"))
        #expect(read("action=PREPEND X-Greylist: delayed 3 seconds by postgrey-1.37 at vm; Thu, 03 Dec 2026 06:45:47 UTC\n\n")
            == .action("PREPEND X-Greylist: delayed 3 seconds by postgrey-1.37 at vm; Thu, 03 Dec 2026 06:45:47 UTC"))
        #expect(read("action=DUNNO\n\n") == .action("DUNNO"))
    }

    @Test func otherAttributesIgnoredFirstActionKeptCRDropped() {
        #expect(read("reason=x\naction=OK fine = good\nextra=1\n\n") == .action("OK fine = good"))
        #expect(read("action=DUNNO\naction=REJECT\n\n") == .action("DUNNO"))
        #expect(read("action=REJECT no\r\n\r\n") == .action("REJECT no"))
        #expect(read("actionx=REJECT\nAction=REJECT\naction=DUNNO\n\n") == .action("DUNNO"))
    }

    @Test func splitAtEveryByte() {
        let text = b("foo=bar\r\naction=451 4.7.1 try later\r\n\r\n")
        var reader = PolicyServiceReader()
        for (i, byte) in text.enumerated() {
            let got = reader.feed([byte])
            if i < text.count - 1 {
                #expect(got == nil, "byte \(i)")
            } else {
                #expect(got == .action("451 4.7.1 try later"))
            }
        }
        #expect(reader.extraBytes == 0)
    }

    @Test func bytesAfterTheReplyAreCounted() {
        var reader = PolicyServiceReader()
        #expect(reader.feed(b("action=DUNNO\n\naction=OK\n")) == .action("DUNNO"))
        #expect(reader.extraBytes == 10)
        #expect(reader.feed(b("\n")) == .action("DUNNO"))
        #expect(reader.extraBytes == 11)
    }

    @Test func errors() {
        #expect(read("\n") == .protocolError("an empty reply"))
        #expect(read("foo=bar\n\n") == .protocolError("a reply without an action attribute"))
        #expect(read("garbage\n\n") == .protocolError("a reply line that is not name=value: \"garbage\""))
        #expect(read("=DUNNO\n\n") == .protocolError("a reply line that is not name=value: \"=DUNNO\""))
        #expect(read("action=\n\n") == .protocolError("an empty action"))
        #expect(read("action=  \n\n") == .protocolError("an empty action"))
        #expect(read(b("action=DU") + [0] + b("NNO\n\n")) == .protocolError("a NUL in a reply line"))
        #expect(read(b("action=") + [0xff, 0xfe] + b("\n\n")) == .protocolError("malformed UTF-8 in the action"))
        #expect(read("HTTP/1.1 400 Bad Request\r\n\r\n").isError)
        #expect(read("") == .protocolError("closed without an answer"))
        #expect(read("action=DUNNO\n") == .protocolError("closed in the middle of an answer"))
        #expect(read("action=DUN") == .protocolError("closed in the middle of an answer"))
    }

    @Test func anOverlongLineFailsBeforeItsEnd() {
        var reader = PolicyServiceReader()
        #expect(reader.feed(b("action=") + [UInt8](repeating: 0x41, count: PolicyServiceReader.maxLine - 7)) == nil)
        #expect(reader.feed(b("A")) == .protocolError("a reply line longer than 4096 bytes"))
        // Exactly at the bound is fine.
        #expect(read(b("action=") + [UInt8](repeating: 0x41, count: PolicyServiceReader.maxLine - 7) + b("\n\n"))
            == .action(String(repeating: "A", count: PolicyServiceReader.maxLine - 7)))
    }

    @Test func anOverlongReplyFailsBeforeItsEnd() {
        var reader = PolicyServiceReader()
        let line = b("x=") + [UInt8](repeating: 0x41, count: 1000) + b("\n")
        var got: PolicyServiceResponse?
        var fed = 0
        while got == nil, fed < 200 {
            got = reader.feed(line)
            fed += 1
        }
        #expect(got == .protocolError("a reply longer than 65536 bytes"))
        #expect(fed * line.count > PolicyServiceReader.maxReply)
        #expect(fed * line.count < PolicyServiceReader.maxReply + 2 * line.count)
    }
}

extension PolicyServiceResponse {
    var isError: Bool {
        if case .protocolError = self { return true }
        return false
    }
}
