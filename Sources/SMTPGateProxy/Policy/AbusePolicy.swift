import SMTPGateCore

/// The session machine's policy for one session: rate limits at MAIL, RCPT and DATA, and the lock check
/// after the final dot. Decides from memory, at once.
struct AbusePolicy {
    let abuse: ListenerAbuse
    let lockKey: ClientKey?
    let rateKey: ClientKey?
    /// A refusal for a rate limit, for the event stream.
    let limited: (RateExceeded) -> Void

    func decide(_ point: PolicyPoint) -> PolicyDecision {
        switch point {
        case .hello:
            return .relay
        case .mail:
            return check([.messages, .mailfromRejects, .authRejects])
        case .rcpt:
            let d = check([.recipients, .rcpttoRejects])
            // Counted as the client tried it: a recipient the proxy refused for the limit is not.
            if d == .relay, let rateKey { abuse.record(rateKey, .recipients) }
            return d
        case .data:
            return check([.bytes])
        case .endOfData:
            if let lockKey, let lock = abuse.activeLock(lockKey) {
                return .reply(ProxyReplies.lockedDuringMessage(lock), then: .takeover("client locked"))
            }
            if let rateKey { abuse.record(rateKey, .messages) }
            return .relay
        }
    }

    private func check(_ kinds: [RateKind]) -> PolicyDecision {
        guard let rateKey, let e = abuse.exceeded(rateKey, kinds) else { return .relay }
        limited(e)
        return .reply(ProxyReplies.rateLimited(e), then: .carryOn)
    }
}
