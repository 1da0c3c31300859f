/// Where the session machine asks its policy: the commands a policy can refuse, and the end of a message
/// (before its final dot reaches the MTA). Client text is escaped.
public enum PolicyPoint: Sendable, Hashable {
    case hello(name: String)
    case mail(from: String)
    case rcpt(to: String)
    case data
    case endOfData(size: Int)
}

/// A policy's answer at a `PolicyPoint`.
public enum PolicyDecision: Sendable, Equatable {
    /// Go on: the command goes to the MTA (the final dot is sent, or the message goes to the scanners).
    case relay
    /// The proxy answers instead, in pipeline order, and nothing reaches the MTA. At the end of a message
    /// the MTA's transaction is aborted (the upstream is closed before it sees the dot).
    case reply(PolicyReply, then: AfterReply)
    /// Wait: the command (or the final dot) and everything after it are held until `SessionMachine.answer`.
    case ask
    /// Relay, and add these header lines (`Name: value`, without CRLF) at the top of this transaction's
    /// message (access(5)'s PREPEND, postgrey's `X-Greylist`). At the end of a message it is too late: relay.
    case prepend([String])
}

public enum AfterReply: Sendable, Equatable {
    /// The session goes on (a refused RCPT, a temporary limit).
    case carryOn
    /// The proxy takes the session over with this reason (the client is locked: nothing more goes upstream).
    case takeover(String)
    /// The reply is the last thing the client gets.
    case close
}

/// A reply a policy gives, and what it means for the transaction's log line.
public struct PolicyReply: Sendable, Equatable {
    public var code: Int
    public var enhanced: String?
    public var text: String
    public var why: EndReason
    /// With the proxy's name before the text, as the proxy's own replies are; a reply that stands for
    /// the site's (a blocklist's) is not.
    public var named: Bool
    /// The `msg_*` text that replaces `text` where the configuration sets one.
    var wording: ReplyWording?

    public init(code: Int, enhanced: String?, text: String, why: EndReason, named: Bool = true) {
        self.code = code
        self.enhanced = enhanced
        self.text = text
        self.why = why
        self.named = named
    }

    init(code: Int, enhanced: String?, text: String, why: EndReason, named: Bool = true, wording: ReplyWording?) {
        self.init(code: code, enhanced: enhanced, text: text, why: why, named: named)
        self.wording = wording
    }

    var proxyReply: ProxyReply { ProxyReply(code: code, enhanced: enhanced, text: text, named: named, wording: wording) }
}
