/// clamd's INSTREAM exchange (clamd(8)): the proxy streams the message itself, so clamd need not see the
/// spool. The `z` form of the command makes clamd end its reply with a NUL, which cannot appear in a reply
/// text; a newline is accepted as well, for a daemon answering the `n` way.
public enum ClamdProtocol {
    public static let command: [UInt8] = Array("zINSTREAM".utf8) + [0]
    /// A zero-length chunk ends the stream; this is also why an empty piece must never be framed.
    public static let end: [UInt8] = [0, 0, 0, 0]
    /// clamd's longest real replies are a virus name or an error sentence; anything longer is not clamd.
    public static let maxReply = 4096
    /// Long enough for any real signature name, short enough for one SMTP reply line.
    public static let maxNameLength = 200

    /// The 4-byte big-endian length that goes before each piece of the message.
    public static func chunkHeader(length: Int) -> [UInt8] {
        precondition(length > 0 && length <= Int(UInt32.max), "a clamd chunk holds 1 to 2^32-1 bytes")
        return [UInt8(truncatingIfNeeded: length >> 24), UInt8(truncatingIfNeeded: length >> 16),
                UInt8(truncatingIfNeeded: length >> 8), UInt8(truncatingIfNeeded: length)]
    }

    /// Everything a client sends for `message` cut into pieces of `chunkSize`.
    public static func request(for message: [UInt8], chunkSize: Int) -> [UInt8] {
        precondition(chunkSize > 0)
        var out = command
        var start = 0
        while start < message.count {
            let piece = message[start..<min(message.count, start + chunkSize)]
            out += chunkHeader(length: piece.count)
            out += piece
            start += piece.count
        }
        return out + end
    }

    /// One reply, without its terminator.
    public static func parse<C: Collection>(reply: C) -> ClamdReply where C.Element == UInt8 {
        var text = Array(reply)
        if text.last == UInt8(ascii: "\r") { text.removeLast() }
        let prefix = Array("stream: ".utf8)
        let found = Array(" FOUND".utf8)
        let error = Array(" ERROR".utf8)
        if text == Array("stream: OK".utf8) { return .clean }
        if text == Array("ERROR".utf8) { return .error("unspecified") }
        if text.ends(with: error) {
            var message = text.dropLast(error.count)
            if message.starts(with: prefix) { message = message.dropFirst(prefix.count) }
            let safe = ScannerText.printable(message, limit: maxNameLength, space: UInt8(ascii: " "))
            return .error(safe.isEmpty ? "unspecified" : safe)
        }
        if text.starts(with: prefix), text.ends(with: found), text.count > prefix.count + found.count {
            let name = ScannerText.printable(text[prefix.count..<(text.count - found.count)],
                                             limit: maxNameLength, space: UInt8(ascii: "_"))
            return name.isEmpty ? .unreadable : .virus(name)
        }
        return .unreadable
    }
}

/// What clamd said, once read.
public enum ClamdReply: Sendable, Equatable {
    case clean
    /// The signature name, made safe (printable ASCII, no spaces, bounded).
    case virus(String)
    /// clamd answered `... ERROR`: its text, made safe.
    case error(String)
    /// Not a clamd reply: garbage, too long, or cut short.
    case unreadable
    /// The connection ended before any byte of a reply.
    case noAnswer

    public var result: ScanReport.Result {
        switch self {
        case .clean: return .clean
        case .virus(let name): return .virus(name)
        case .error(let text): return .failed("clamd error: \(text)")
        case .unreadable: return .failed("unreadable answer")
        case .noAnswer: return .failed("closed without an answer")
        }
    }
}

/// Collects clamd's reply as it arrives, holding at most `ClamdProtocol.maxReply` bytes.
public struct ClamdReplyReader: Sendable {
    private var buffer: [UInt8] = []
    public private(set) var reply: ClamdReply?

    public init() {}

    /// The reply once its terminator arrived (or once it is too long to be one); nil while more is needed.
    /// Bytes after the terminator are ignored: clamd sends one reply per INSTREAM.
    public mutating func feed<C: Collection>(_ bytes: C) -> ClamdReply? where C.Element == UInt8 {
        guard reply == nil else { return reply }
        for byte in bytes {
            if byte == 0 || byte == UInt8(ascii: "\n") {
                reply = ClamdProtocol.parse(reply: buffer)
                break
            }
            buffer.append(byte)
            if buffer.count > ClamdProtocol.maxReply {
                reply = .unreadable
                break
            }
        }
        if reply != nil { buffer = [] }
        return reply
    }

    /// What the exchange amounts to when the connection ended: a reply without its terminator counts as cut short.
    public func end() -> ClamdReply {
        reply ?? (buffer.isEmpty ? .noAnswer : .unreadable)
    }
}

/// Scanner text bound for a log line and an SMTP reply: printable ASCII only, and none of the characters a
/// log consumer could take for quoting or a format directive.
enum ScannerText {
    /// Leading and trailing blanks are dropped; each unsafe byte becomes `?`, each inner space `space`.
    static func printable<C: BidirectionalCollection>(_ bytes: C, limit: Int, space: UInt8) -> String where C.Element == UInt8 {
        var trimmed = bytes[...]
        while trimmed.first == UInt8(ascii: " ") || trimmed.first == UInt8(ascii: "\t") { trimmed = trimmed.dropFirst() }
        while let last = trimmed.last, last == UInt8(ascii: " ") || last == UInt8(ascii: "\t") { trimmed = trimmed.dropLast() }
        var out: [UInt8] = []
        out.reserveCapacity(min(limit, trimmed.count))
        for byte in trimmed.prefix(limit) {
            switch byte {
            case UInt8(ascii: " "): out.append(space)
            case UInt8(ascii: "\\"), UInt8(ascii: "\""), UInt8(ascii: "%"): out.append(UInt8(ascii: "?"))
            case 0x21...0x7e: out.append(byte)
            default: out.append(UInt8(ascii: "?"))
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}

private extension Array where Element == UInt8 {
    func ends(with suffix: [UInt8]) -> Bool {
        count >= suffix.count && self[(count - suffix.count)...].elementsEqual(suffix)
    }
}
