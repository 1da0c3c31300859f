import FuzzSupport
import SMTPGateCore

// ClamdReplyReader fed clamd's answer in fuzzer-chosen pieces reaches the reply the whole-buffer rule gives: the
// first NUL or LF ends it, more than `maxReply` bytes without one is unreadable, and it never changes once
// given. Whatever clamd sends, a virus name or error text that comes out is safe for a log line and an SMTP
// reply: printable ASCII without quote, backslash or percent, bounded, a name without spaces.
fuzzMain { data in
    var input = FuzzInput(data)
    let pieces = input.chunkedRest()
    let wire = pieces.flatMap { $0 }
    var reader = ClamdReplyReader()
    let reply = settledAnswer(pieces) { reader.feed($0) }
    let expected: ClamdReply?
    if let t = wire.firstIndex(where: { $0 == 0 || $0 == 0x0a }), t <= ClamdProtocol.maxReply {
        expected = ClamdProtocol.parse(reply: wire[..<t])
    } else {
        expected = wire.count > ClamdProtocol.maxReply ? .unreadable : nil
    }
    check(reply == expected, "reply \(String(describing: reply)), expected \(String(describing: expected))")
    check(reader.end() == reply ?? (wire.isEmpty ? .noAnswer : .unreadable), "end() \(reader.end())")
    checkSafe(reader.end())
    checkSafe(ClamdProtocol.parse(reply: wire))
    _ = reader.end().result
}

func checkSafe(_ reply: ClamdReply) {
    switch reply {
    case .virus(let name):
        check(!name.isEmpty && name.utf8.count <= ClamdProtocol.maxNameLength, "virus name \(show(name.utf8))")
        check(name.utf8.allSatisfy { isSafe($0) && $0 != 0x20 }, "virus name \(show(name.utf8))")
    case .error(let text):
        check(!text.isEmpty && text.utf8.count <= ClamdProtocol.maxNameLength, "error text \(show(text.utf8))")
        check(text.utf8.allSatisfy(isSafe), "error text \(show(text.utf8))")
    case .clean, .unreadable, .noAnswer:
        break
    }
}

func isSafe(_ b: UInt8) -> Bool {
    b >= 0x20 && b <= 0x7e && b != UInt8(ascii: "\"") && b != UInt8(ascii: "\\") && b != UInt8(ascii: "%")
}
