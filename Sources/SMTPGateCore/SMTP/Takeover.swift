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
        case reply(ProxyReply)
        case replyAndClose(ProxyReply, why: EndReason)
    }

    mutating func answer(_ verb: Verb, proxyName: String) -> Answer {
        commands += 1
        if commands > limit {
            return .replyAndClose(ProxyReply(code: 554, enhanced: "5.7.0", text: "too many commands after session takeover"),
                                  why: .takeoverLimit)
        }
        switch verb {
        case .quit: return .replyAndClose(ProxyReplies.closing, why: .quit)
        case .rset, .noop: return .reply(ProxyReply(code: 250, enhanced: "2.0.0", text: "OK", named: false))
        case .helo, .ehlo: return .reply(ProxyReply(code: 250, enhanced: nil, text: proxyName, named: false))
        case .mail: return .reply(ProxyReply(code: 451, enhanced: "4.3.0", text: reason))
        case .rcpt, .data: return .reply(ProxyReply(code: 503, enhanced: "5.5.1", text: reason))
        default: return .reply(ProxyReply(code: 502, enhanced: "5.5.1", text: reason))
        }
    }
}
