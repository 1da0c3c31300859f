/// A well-behaved MTA for session-client. It answers each line at once and in order, and tags each reply
/// (`tag=N` after the code) with the client line it answers: the line's last word `tagN`, or for the end of a
/// message its DATA's tag plus one. A line without a tag (the proxy's own QUIT) gets `tag=?`, so the client
/// can tell whose reply reached it. Which replies it gives is set by `personality`; in TLS it echoes.
///
/// It checks the proxy's side of pipelining (RFC 2920 3.1): after a barrier line (DATA, AUTH, STARTTLS, a SASL
/// response) nothing more arrives until the reply to it has been delivered, unless the proxy is closing the
/// connection in the same output (its QUIT then needs no answer). And the proxy never passes on what it
/// answers itself: BDAT, XEXCH50, and STARTTLS when that is forbidden.
public struct ScriptedMTA {
    public enum Received {
        case line(tag: Int?, bytes: [UInt8])
        /// A whole message: DATA's tag, and the body as received (dot-stuffed, without the terminator).
        case message(tag: Int?, body: [UInt8])
    }

    private enum State {
        case command
        case data(tag: Int?)
        case sasl(rounds: Int)
        case tls
        case gone
    }

    private var state = State.command
    private var line: [UInt8] = []
    private var body: [UInt8] = []
    private var output = Array(ascii: "220 tag=0 mx.fuzz ESMTP\r\n")
    private var delivered = 0
    /// Where the reply to the last barrier line ends in `output`.
    private var barrierReplyEnd = 0
    private let personality: UInt8
    private let forbidStartTLS: Bool
    /// It answered QUIT: once that is delivered it hangs up.
    public private(set) var saidGoodbye = false

    public init(personality: UInt8, forbidStartTLS: Bool) {
        self.personality = personality
        self.forbidStartTLS = forbidStartTLS
    }

    public var undelivered: Int { output.count - delivered }

    /// The next `n` bytes it has written (all of them for 0).
    public mutating func take(_ n: Int) -> [UInt8] {
        let end = n == 0 ? output.count : min(output.count, delivered + n)
        defer { delivered = end }
        return Array(output[delivered..<end])
    }

    /// The connection is gone: closed by the proxy or by the MTA.
    public mutating func hangUp() { state = .gone }

    public mutating func receive(_ bytes: [UInt8], closing: Bool) -> [Received] {
        var got: [Received] = []
        for b in bytes {
            if case .gone = state { break }
            check(closing || delivered >= barrierReplyEnd,
                  "the proxy sent \(show(bytes)) before the reply to a barrier command was delivered")
            switch state {
            case .gone:
                break
            case .tls:
                output.append(b)
            case .data(let tag):
                body.append(b)
                let n = body.count
                if n >= 3, body[n - 3] == 0x2e, body[n - 2] == 0x0d, b == 0x0a, DataReference.isLineStart(body, n - 3) {
                    got.append(.message(tag: tag, body: Array(body[..<(n - 3)])))
                    body = []
                    state = .command
                    reply(250, tag.map { $0 + 1 }, "queued")
                }
            case .command, .sasl:
                line.append(b)
                if b == 0x0a {
                    let tag = Self.tag(line)
                    got.append(.line(tag: tag, bytes: line))
                    answer(line, tag)
                    line = []
                }
            }
        }
        return got
    }

    private mutating func answer(_ line: [UInt8], _ tag: Int?) {
        if case .sasl(let rounds) = state {
            if personality & 0x40 != 0, rounds < 2 {
                state = .sasl(rounds: rounds + 1)
                reply(334, tag, "more")
            } else {
                state = .command
                reply(235, tag, "authenticated")
            }
            barrierReplyEnd = output.count
            return
        }
        let verb = String(decoding: line.prefix { $0 != 0x20 && $0 != 0x0d && $0 != 0x0a }, as: UTF8.self).uppercased()
        check(!["BDAT", "XEXCH50"].contains(verb) && !(forbidStartTLS && verb == "STARTTLS"),
              "the proxy passed on \(show(line))")
        switch verb {
        case "EHLO":
            var lines = ["mx.fuzz", "PIPELINING", "SIZE 1000000", "AUTH PLAIN"]
            if personality & 0x01 != 0 { lines.append("ENHANCEDSTATUSCODES") }
            if personality & 0x02 != 0 { lines.append("STARTTLS") }
            lines.append(personality & 0x04 != 0 ? "CHUNKING" : "8BITMIME")
            lines[0] = "tag=\(tag.map(String.init) ?? "?") " + lines[0]
            for (i, text) in lines.enumerated() { output += Array(ascii: "250\(i == lines.count - 1 ? " " : "-")\(text)\r\n") }
        case "MAIL":
            reply(personality & 0x08 != 0 && (tag ?? 0) % 2 == 1 ? 550 : 250, tag, "sender")
        case "RCPT":
            reply(personality & 0x10 != 0 && (tag ?? 0) % 3 == 0 ? 550 : 250, tag, "recipient")
        case "DATA":
            if personality & 0x20 != 0 {
                reply(554, tag, "no data today")
            } else {
                reply(354, tag, "go ahead")
                state = .data(tag: tag)
            }
            barrierReplyEnd = output.count
        case "AUTH":
            reply(334, tag, "")
            state = .sasl(rounds: 0)
            barrierReplyEnd = output.count
        case "STARTTLS":
            if personality & 0x80 != 0 {
                reply(454, tag, "TLS not available")
            } else {
                reply(220, tag, "ready for TLS")
                state = .tls
            }
            barrierReplyEnd = output.count
        case "QUIT":
            reply(221, tag, "bye")
            saidGoodbye = true
            state = .gone
        case "HELO", "RSET", "NOOP":
            reply(250, tag, "ok")
        default:
            reply(500, tag, "unrecognized")
        }
    }

    private mutating func reply(_ code: Int, _ tag: Int?, _ text: String) {
        output += Array(ascii: "\(code) tag=\(tag.map(String.init) ?? "?") \(text)\r\n")
    }

    /// `N` of the line's last word `tagN`.
    static func tag(_ line: [UInt8]) -> Int? {
        let words = line.split { $0 == 0x20 || $0 == 0x0d || $0 == 0x0a }
        guard let last = words.last, last.starts(with: Array(ascii: "tag")), (4...9).contains(last.count),
              last.dropFirst(3).allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
        return Int(String(decoding: last.dropFirst(3), as: UTF8.self))
    }
}
