/// A reply the proxy writes itself, kept as parts until it is sent: whether it carries an enhanced status
/// code depends on the EHLO reply that may still be ahead of it in the pipeline.
struct ProxyReply: Equatable {
    var code: Int
    var enhanced: String?
    var text: String
    /// `CODE [x.y.z] PROXY_NAME: TEXT`, or without the name for bare replies like `250 2.0.0 OK`.
    var named = true
    /// The `msg_*` text that replaces `text` where the configuration sets one.
    var wording: ReplyWording? = nil
}

/// The texts of replies the proxy writes itself. The enhanced status code is included only while the
/// client may expect it (before EHLO, or when the upstream advertised ENHANCEDSTATUSCODES).
public struct ProxyReplies: Sendable {
    public var proxyName: String
    public var enhanced = true
    /// The configured `msg_*` texts.
    public var texts: [ReplyText: ReplyTemplate]

    public init(proxyName: String, texts: [ReplyText: ReplyTemplate] = [:]) {
        self.proxyName = proxyName
        self.texts = texts
    }

    func render(_ r: ProxyReply) -> [UInt8] {
        var line = String(r.code)
        if enhanced, let esc = r.enhanced { line += " " + esc }
        let text = wordedText(r) ?? r.text
        line += r.named ? " \(proxyName): \(text)\r\n" : " \(text)\r\n"
        return Array(line.utf8)
    }

    func wordedText(_ r: ProxyReply) -> String? {
        guard let w = r.wording, !texts.isEmpty else { return nil }
        for key in w.keys {
            if let t = texts[key] { return t.render(w.values) }
        }
        return nil
    }

    public func make(_ code: Int, _ enhancedCode: String, _ text: String) -> [UInt8] {
        render(ProxyReply(code: code, enhanced: enhancedCode, text: text))
    }

    /// The one reply a connection refused before its session gets.
    public func refusal(_ r: Refusal) -> [UInt8] {
        render(r.reply)
    }

    /// To a client accepted when the process is out of descriptors (on the listener's spare, or with none
    /// left for its session's connection to the destination).
    public func tooManyOpenFiles() -> [UInt8] {
        render(ProxyReply(code: 421, enhanced: "4.3.2", text: "too many open files, try again later", wording: ReplyWording(.tempUnavail)))
    }

    static func tooManyConnections(limit: Int) -> ProxyReply {
        ProxyReply(code: 554, enhanced: "5.7.0", text: "too many connections (max_connections \(limit))",
                   wording: ReplyWording(.maxReached, ["limit": "\(limit)"]))
    }

    static func tooManyFromHost(limit: Int) -> ProxyReply {
        ProxyReply(code: 554, enhanced: "5.7.0", text: "too many connections from your host (max_per_host \(limit))",
                   wording: ReplyWording(.maxPerHost, ["limit": "\(limit)"]))
    }

    static func lookupFailed(_ why: String) -> ProxyReply {
        ProxyReply(code: 421, enhanced: "4.4.3", text: "cannot find the destination: \(why)",
                   wording: ReplyWording(.lookupFailed, ["reason": why]))
    }

    static func loop(_ destination: String) -> ProxyReply {
        ProxyReply(code: 554, enhanced: "5.4.6", text: "routing loop: \(destination) is this proxy",
                   wording: ReplyWording(.loopAvoidance, ["destination": destination]))
    }

    static func connectFailed(_ destination: String, _ why: String) -> ProxyReply {
        ProxyReply(code: 421, enhanced: "4.4.1", text: "cannot connect to \(destination): \(why)",
                   wording: ReplyWording(.connectFailed, ["destination": destination, "reason": why]))
    }

    /// The client learns the cause and when it may try again; the lock's reason (a virus name, say) is the log's.
    static func locked(_ lock: ClientLock) -> ProxyReply {
        return ProxyReply(code: 554, enhanced: "5.7.1", text: "your address is locked (\(lock.cause.rawValue)) \(until(lock))",
                          wording: lockWording(lock))
    }

    static func until(_ lock: ClientLock) -> String {
        lock.expires.map { "until \(ActionEvent.utcTime(ActionEvent.unixSeconds($0))) UTC" } ?? "until removed by the administrator"
    }

    static func lockWording(_ lock: ClientLock) -> ReplyWording {
        ReplyWording(.virusLocked, ["cause": lock.cause.rawValue, "until": until(lock)])
    }

    /// Postfix's words for a listing, so that senders' tools and people recognise it; the zone named is the
    /// heaviest that listed the client.
    static func dnsblListed(_ v: DNSBLVerdict) -> ProxyReply {
        ProxyReply(code: 554, enhanced: "5.7.1", text: "Service unavailable; client [\(v.client)] blocked using \(v.heaviest ?? "-")",
                   named: false, wording: ReplyWording(.dnsdbReject, ["client": v.client, "zone": v.heaviest ?? "-", "score": "\(v.score)"]))
    }

    /// `auth_skip dnsbl`: the listed client's MAIL, since it has not authenticated. Permanent, as at connect.
    public static func dnsblListedAtMail(_ v: DNSBLVerdict) -> PolicyReply {
        let r = dnsblListed(v)
        return PolicyReply(code: r.code, enhanced: r.enhanced, text: r.text, why: .dnsbl, named: false, wording: r.wording)
    }

    /// RFC 4954 §6's reply for a server policy that needs AUTH first.
    public static let authRequired = PolicyReply(code: 530, enhanced: "5.7.0", text: "Authentication required", why: .authRequired,
                                                 wording: ReplyWording(.authRequired))

    /// RFC 5321 §4.3.1: a client waits for the greeting; one that does not is a spambot's shortcut.
    static let earlyTalker = ProxyReply(code: 554, enhanced: "5.5.1", text: "protocol error: you talked before the greeting",
                                         wording: ReplyWording(.earlytalker))

    /// A temporary reply so nothing bounces (smtp-gated said 552): the client retries once its window slides.
    static func rateLimitedAtConnect(_ e: RateExceeded) -> ProxyReply {
        ProxyReply(code: 421, enhanced: "4.7.0", text: "rate limit reached, try again later (\(rateText(e)))", wording: rateWording(e))
    }

    public static func rateLimited(_ e: RateExceeded) -> PolicyReply {
        PolicyReply(code: 451, enhanced: "4.7.1", text: "rate limit reached, try again later (\(rateText(e)))", why: .rateLimit,
                    wording: rateWording(e))
    }

    /// A client locked while its message came in: temporary, so the message is not bounced if the lock was wrong.
    public static func lockedDuringMessage(_ lock: ClientLock) -> PolicyReply {
        PolicyReply(code: 451, enhanced: "4.7.1", text: "your address was locked (\(lock.cause.rawValue)), message not sent", why: .locked,
                    wording: lockWording(lock))
    }

    static func rateWording(_ e: RateExceeded) -> ReplyWording {
        ReplyWording(keys: ReplyText.rate(e.kind), ["count": "\(e.count)", "limit": "\(e.window.limit)",
                                                    "seconds": "\(e.window.seconds)", "option": e.kind.optionName])
    }

    static func rateText(_ e: RateExceeded) -> String {
        "\(e.count) \(e.kind.rawValue) in \(e.window.seconds) s, \(e.kind.optionName) \(e.window.limit)/\(e.window.seconds)"
    }

    static func tooManyFromIdent(limit: Int) -> ProxyReply {
        ProxyReply(code: 554, enhanced: "5.7.0", text: "too many connections from your host and ident (max_per_ident \(limit))",
                   wording: ReplyWording(.maxPerIdent, ["limit": "\(limit)"]))
    }

    static func loadTooHigh(load: Double, limit: Double) -> ProxyReply {
        ProxyReply(code: 421, enhanced: "4.3.2", text: "system load too high (max_load \(limit)), try again later",
                   wording: ReplyWording(.systemLoad, ["load": "\(load)", "limit": "\(limit)"]))
    }

    static func destinationLost(_ why: String, transactionOpen: Bool) -> ProxyReply {
        ProxyReply(code: transactionOpen ? 451 : 421, enhanced: "4.4.2", text: why, wording: ReplyWording(.transactionFailed, ["reason": why]))
    }

    static let idleTimeout = ProxyReply(code: 421, enhanced: "4.4.2", text: "idle timeout",
                                        wording: ReplyWording(.sessionTimeout, ["timeout": "timeout_idle"]))
    static let sessionTimeout = ProxyReply(code: 421, enhanced: "4.4.2", text: "session timeout",
                                           wording: ReplyWording(.sessionTimeout, ["timeout": "timeout_session"]))
    static let shuttingDown = ProxyReply(code: 421, enhanced: "4.3.2", text: "shutting down", wording: ReplyWording(.tempUnavail))
    static let pipelineOverflow = ProxyReply(code: 503, enhanced: "5.0.0", text: "pipeline overflow", wording: ReplyWording(.pipelineFull))
    static let startTLSForbidden = unimplemented("STARTTLS", "STARTTLS not permitted")
    static let bdatUnsupported = unimplemented("BDAT", "BDAT not supported")
    static let xexch50Unsupported = unimplemented("XEXCH50", "XEXCH50 not supported")

    static func unimplemented(_ command: String, _ text: String) -> ProxyReply {
        ProxyReply(code: 502, enhanced: "5.5.1", text: text, wording: ReplyWording(.unimplCommand, ["command": command]))
    }
    /// RFC 5321 4.3.2: RCPT or DATA with no transaction begun (its MAIL was refused).
    static let noMailTransaction = ProxyReply(code: 503, enhanced: "5.5.1", text: "no mail transaction (MAIL was refused)")
    static let closing = ProxyReply(code: 221, enhanced: "2.0.0", text: "closing connection", wording: ReplyWording(.signOff))
    /// RFC 5321 4.5.3.1.10: 452 for too many recipients, and the client goes on with those it has.
    static let tooManyRecipients = ProxyReply(code: 452, enhanced: "4.5.3", text: "Too many recipients")
    static let senderTooLong = ProxyReply(code: 501, enhanced: "5.1.7", text: "sender address too long (at most 256 octets)")
    static let recipientTooLong = ProxyReply(code: 501, enhanced: "5.1.3", text: "recipient address too long (at most 256 octets)")

    static func virusFound(_ name: String) -> ProxyReply {
        ProxyReply(code: 550, enhanced: "5.7.1", text: "virus found: \(name)", wording: ReplyWording(.virusFound, ["virus": name]))
    }

    static func spamFound(score: Double, threshold: Double) -> ProxyReply {
        ProxyReply(code: 550, enhanced: "5.7.1", text: "message looks like spam (score \(score), spam_threshold \(threshold))",
                   wording: ReplyWording(.spamFound, ["score": "\(score)", "threshold": "\(threshold)"]))
    }

    static func notScanned(_ why: String) -> ProxyReply {
        ProxyReply(code: 451, enhanced: "4.3.0", text: "message not scanned, try again later (\(why))",
                   wording: ReplyWording(.scannerFailed, ["reason": why]))
    }

    static let bareNewlineDot = ProxyReply(code: 550, enhanced: "5.6.0",
                                           text: "message refused: a bare CR or LF is followed by a dot")

    static func sizeExceeded(limit: Int) -> ProxyReply {
        ProxyReply(code: 552, enhanced: "5.3.4", text: "message size exceeds fixed limit (size_limit \(limit))",
                   wording: ReplyWording(.sizeLimit, ["limit": "\(limit)"]))
    }
}
