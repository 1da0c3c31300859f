import SMTPGateCore

/// Turns what sessions report into locks (`lock_on`) and reject counts (`ratelimit_*_rejects`, `ratelimit_bytes`).
struct AbuseSubscriber: ProxyEventSubscriber {
    let abuse: ListenerAbuse
    /// Off in `policy_mode warn`: nothing is locked.
    var locking = true

    func receive(_ event: ProxyEvent) -> ProxyEvent? {
        switch event {
        case .found(let c, let f):
            return lock(c, f)
        case .rateLimited(let c, let e), .refused(let c, .rateLimited(let e)):
            return lock(c, Finding(kind: .rateLimit(e)))
        case .session(let c, .replied(let command, let code)):
            guard let key = c.facts.rateKey, code >= 400 else { return nil }
            switch command {
            case .mail: abuse.record(key, .mailfromRejects)
            case .rcpt: abuse.record(key, .rcpttoRejects)
            case .auth: abuse.record(key, .authRejects)
            case .dataEnd: break
            }
        case .closed(let c, let totals):
            // Blind (STARTTLS) sessions count here too: their bytes are all that can be seen of them.
            if let key = c.facts.rateKey, totals.bytesIn > 0 { abuse.record(key, .bytes, amount: Double(totals.bytesIn)) }
        default:
            break
        }
        return nil
    }

    private func lock(_ c: SessionContext, _ f: Finding) -> ProxyEvent? {
        guard locking, let key = c.facts.lockKey, let lock = abuse.lock(key, for: f.kind) else { return nil }
        return .locked(c, lock, source: abuse.source, finding: f)
    }
}
