import FuzzSupport
import SMTPGateCore

// SpamdReplyReader fed spamd's answer in fuzzer-chosen pieces reaches the same answer as fed whole, and never
// changes it once given; so does `end()` when the connection closes there. Whatever spamd sends, a score that
// comes out is finite and an error text is safe for a log line and an SMTP reply (printable ASCII without
// quote, backslash or percent, bounded).
fuzzMain { data in
    var input = FuzzInput(data)
    let pieces = input.chunkedRest()
    var chunked = SpamdReplyReader()
    let answer = settledAnswer(pieces) { chunked.feed($0) }
    var whole = SpamdReplyReader()
    let expected = whole.feed(pieces.flatMap { $0 })
    check(answer == expected, "in pieces \(String(describing: answer)), whole \(String(describing: expected))")
    check(chunked.end() == whole.end(), "end() in pieces \(chunked.end()), whole \(whole.end())")
    switch chunked.end() {
    case .score(let score):
        check(score.isFinite, "score \(score)")
    case .error(let text):
        // The status code (up to 3 digits), a space, and the text.
        check(!text.isEmpty && text.utf8.count <= 4 + SpamdProtocol.maxErrorText, "error text \(show(text.utf8))")
        check(text.utf8.allSatisfy {
            $0 >= 0x20 && $0 <= 0x7e && $0 != UInt8(ascii: "\"") && $0 != UInt8(ascii: "\\") && $0 != UInt8(ascii: "%")
        }, "error text \(show(text.utf8))")
    case .unreadable, .noAnswer:
        break
    }
    _ = chunked.end().result
}
