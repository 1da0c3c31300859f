/// Splits what a client receives into SMTP replies, by the grammar the proxy's own reply reader enforces on
/// the upstream (RFC 5321 4.2): lines of three digits 200-599 and a separator (space, '-', or the line end),
/// all lines of a reply with one code, a reply ends at a line without '-'. Anything else reaching the client
/// is an invariant failure: the proxy only relays replies it has read whole and writes its own whole.
public struct ReplyStream {
    public struct Reply {
        public var code: Int
        public var lines: [[UInt8]]
        public var bytes: [UInt8] { lines.flatMap { $0 } }
    }

    private var line: [UInt8] = []
    private var lines: [[UInt8]] = []
    public private(set) var replies: [Reply] = []

    public init() {}

    /// No reply is half-sent.
    public var atReplyBoundary: Bool { line.isEmpty && lines.isEmpty }

    public mutating func feed(_ bytes: [UInt8]) {
        for b in bytes {
            line.append(b)
            guard b == 0x0a else { continue }
            check(line.count >= 4, "reply line too short: \(show(line))")
            let code = line[0..<3].reduce(0) { n, d in
                check(d >= 0x30 && d <= 0x39, "reply line without a code: \(show(line))")
                return n * 10 + Int(d - 0x30)
            }
            check(code >= 200 && code <= 599, "reply code out of range: \(show(line))")
            let sep = line[3]
            check(sep == 0x20 || sep == 0x2d || sep == 0x0d || sep == 0x0a, "bad separator: \(show(line))")
            if let first = lines.first { check(first.prefix(3) == line.prefix(3), "code changes inside a reply: \(show(line))") }
            lines.append(line)
            line = []
            if sep != 0x2d {
                replies.append(Reply(code: code, lines: lines))
                lines = []
            }
        }
    }
}

/// Bytes for a failure message, one character per byte, control bytes escaped.
public func show<S: Sequence>(_ bytes: S) -> String where S.Element == UInt8 {
    var s = ""
    for b in bytes.prefix(300) {
        s += b >= 0x20 && b < 0x7f ? String(UnicodeScalar(b)) : "\\x" + String(b, radix: 16)
    }
    return "\"" + s + "\""
}
