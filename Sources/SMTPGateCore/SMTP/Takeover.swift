/// Answers the client alone once the upstream is gone or refused: enough SMTP for the client to give up
/// politely, bounded by `on_takeover_cmds`.
struct Takeover {
    let reason: String
    let limit: Int
    private(set) var commands = 0

    init(reason: String, limit: Int) {
        self.reason = reason
        self.limit = limit
    }

    enum Answer: Equatable {
        case reply([UInt8])
        case replyAndClose([UInt8], why: String)
    }

    mutating func answer(_ verb: Verb, replies: ProxyReplies) -> Answer {
        commands += 1
        if commands > limit {
            return .replyAndClose(replies.make(554, "5.7.0", "too many commands after session takeover"), why: "takeover_limit")
        }
        switch verb {
        case .quit: return .replyAndClose(replies.make(221, "2.0.0", "closing connection"), why: "quit")
        case .rset, .noop: return .reply(plain(250, "2.0.0", "OK", replies))
        case .helo, .ehlo: return .reply(Array("250 \(replies.proxyName)\r\n".utf8))
        case .mail: return .reply(replies.make(451, "4.3.0", reason))
        case .rcpt, .data: return .reply(replies.make(503, "5.5.1", reason))
        default: return .reply(replies.make(502, "5.5.1", reason))
        }
    }

    private func plain(_ code: Int, _ esc: String, _ text: String, _ r: ProxyReplies) -> [UInt8] {
        Array((r.enhanced ? "\(code) \(esc) \(text)\r\n" : "\(code) \(text)\r\n").utf8)
    }
}
