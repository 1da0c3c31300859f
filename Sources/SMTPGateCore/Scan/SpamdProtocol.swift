/// SpamAssassin spamd's `CHECK` exchange (SPAMC protocol 1.5): a header naming the message length, the
/// message, then spamd's status line and headers, of which only `Spam:` matters. The score is taken, not
/// spamd's own verdict: `spam_threshold` is the proxy's decision.
public enum SpamdProtocol {
    /// A real answer is a status line and a few short headers.
    public static let maxHeader = 8192
    /// Status texts and error lines can be long; what is kept of them goes into a log line and a reply.
    public static let maxErrorText = 200

    /// The request header; nil when `user` is not 1 to 255 printable non-blank ASCII bytes (spamd would
    /// refuse control characters, and a CR or LF would split the header).
    public static func checkRequest(contentLength: Int, user: String? = nil) -> [UInt8]? {
        precondition(contentLength >= 0)
        var text = "CHECK SPAMC/1.5\r\nContent-length: \(contentLength)\r\n"
        if let user {
            guard (1...255).contains(user.utf8.count), user.utf8.allSatisfy({ (0x21...0x7e).contains($0) }) else { return nil }
            text += "User: \(user)\r\n"
        }
        return Array((text + "\r\n").utf8)
    }

    /// The answer's lines up to (not including) the blank line, without their CR LF or LF.
    public static func parse(lines: [ArraySlice<UInt8>]) -> SpamdReply {
        guard let status = lines.first else { return .unreadable }
        if let failed = statusFailure(status) { return failed }
        var score: Double?
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: UInt8(ascii: ":")) else { return .unreadable }
            let name = line[..<colon]
            guard !name.isEmpty, name.allSatisfy({ (0x21...0x7e).contains($0) }) else { return .unreadable }
            guard lowercased(name) == Array("spam".utf8) else { continue }
            // Two verdicts in one answer: neither can be trusted.
            guard score == nil, let value = parseSpamValue(line[(colon + 1)...]) else { return .unreadable }
            score = value
        }
        return score.map(SpamdReply.score) ?? .unreadable
    }

    /// For a status line `SPAMD/1.x CODE TEXT`: nil when CODE is 0, `.error` for another code,
    /// `.unreadable` when the line is not a status line.
    static func statusFailure(_ line: ArraySlice<UInt8>) -> SpamdReply? {
        let words = line.split(separator: UInt8(ascii: " "), maxSplits: 2, omittingEmptySubsequences: true)
        guard words.count >= 2, words[0].starts(with: Array("SPAMD/".utf8)) else { return .unreadable }
        let version = words[0].dropFirst(6).split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        guard version.count == 2, version.allSatisfy({ !$0.isEmpty && $0.count <= 3 && $0.allSatisfy(isDigit) }) else {
            return .unreadable
        }
        let code = words[1]
        guard code.count <= 3, code.allSatisfy(isDigit) else { return .unreadable }
        if code.allSatisfy({ $0 == UInt8(ascii: "0") }) { return nil }
        let text = words.count > 2 ? ScannerText.printable(words[2], limit: maxErrorText, space: UInt8(ascii: " ")) : ""
        let codeText = String(decoding: code, as: UTF8.self)
        return .error(text.isEmpty ? codeText : "\(codeText) \(text)")
    }

    /// ` True ; 1000.0 / 5.0`: the score, when the verdict word, the score and the threshold are all well formed.
    private static func parseSpamValue(_ value: ArraySlice<UInt8>) -> Double? {
        let halves = value.split(separator: UInt8(ascii: ";"), omittingEmptySubsequences: false)
        guard halves.count == 2 else { return nil }
        let verdict = lowercased(trimmed(halves[0]))
        guard ["true", "false", "yes", "no"].contains(where: { Array($0.utf8) == verdict }) else { return nil }
        let numbers = halves[1].split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false)
        guard numbers.count == 2, let score = number(trimmed(numbers[0])), number(trimmed(numbers[1])) != nil else {
            return nil
        }
        return score
    }

    /// A plain decimal (`-1.9`, `1000.0`): Swift's parser would also take `nan`, `inf` and hex forms.
    private static func number(_ text: ArraySlice<UInt8>) -> Double? {
        guard (1...32).contains(text.count),
              text.allSatisfy({ isDigit($0) || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "+") }),
              let value = Double(String(decoding: text, as: UTF8.self)), value.isFinite else { return nil }
        return value
    }

    private static func isDigit(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
    }

    private static func trimmed(_ bytes: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
        var out = bytes
        while out.first == UInt8(ascii: " ") || out.first == UInt8(ascii: "\t") { out = out.dropFirst() }
        while out.last == UInt8(ascii: " ") || out.last == UInt8(ascii: "\t") { out = out.dropLast() }
        return out
    }

    private static func lowercased(_ bytes: ArraySlice<UInt8>) -> [UInt8] {
        bytes.map { (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains($0) ? $0 + 32 : $0 }
    }
}

/// What spamd said, once read.
public enum SpamdReply: Sendable, Equatable {
    case score(Double)
    /// A non-zero status: its code and text, made safe.
    case error(String)
    /// Not a spamd answer: garbage, too long, no `Spam:` header, or cut short.
    case unreadable
    /// The connection ended before any byte of an answer.
    case noAnswer

    public var result: ScanReport.Result {
        switch self {
        case .score(let score): return .score(score)
        case .error(let text): return .failed("spamd error: \(text)")
        case .unreadable: return .failed("unreadable answer")
        case .noAnswer: return .failed("closed without an answer")
        }
    }
}

/// Collects spamd's answer as it arrives, holding at most `SpamdProtocol.maxHeader` bytes.
public struct SpamdReplyReader: Sendable {
    private var buffer: [UInt8] = []
    /// Where each complete line lies in `buffer`, without its CR LF or LF.
    private var lines: [Range<Int>] = []
    private var lineStart = 0
    public private(set) var reply: SpamdReply?

    public init() {}

    /// The answer once its blank line arrived, or at once after a failing or bad status line (spamd sends
    /// no headers after an error status and may keep the connection open); nil while more is needed.
    public mutating func feed<C: Collection>(_ bytes: C) -> SpamdReply? where C.Element == UInt8 {
        guard reply == nil else { return reply }
        for byte in bytes {
            buffer.append(byte)
            if buffer.count > SpamdProtocol.maxHeader {
                reply = .unreadable
                break
            }
            guard byte == UInt8(ascii: "\n") else { continue }
            var end = buffer.count - 1
            if end > lineStart, buffer[end - 1] == UInt8(ascii: "\r") { end -= 1 }
            lines.append(lineStart..<end)
            lineStart = buffer.count
            if lines.count == 1, let failed = SpamdProtocol.statusFailure(buffer[lines[0]]) {
                reply = failed
                break
            }
            if lines.count > 1, lines[lines.count - 1].isEmpty {
                reply = SpamdProtocol.parse(lines: lines.dropLast().map { buffer[$0] })
                break
            }
        }
        if reply != nil {
            buffer = []
            lines = []
            lineStart = 0
        }
        return reply
    }

    /// What the exchange amounts to when the connection ended. Complete lines still count (the `Spam:` line
    /// is whole once its line end arrived); a partial last line is dropped.
    public func end() -> SpamdReply {
        if let reply { return reply }
        if buffer.isEmpty { return .noAnswer }
        return SpamdProtocol.parse(lines: lines.map { buffer[$0] })
    }
}
