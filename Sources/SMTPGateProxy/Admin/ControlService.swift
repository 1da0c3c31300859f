import SMTPGateCore
import SMTPGateRuntime

/// What the daemon does for each control request: works on the live tables, so a change applies to the
/// next connection (and through the store, to every proxy sharing it).
struct ControlService {
    let abuse: AbuseControl
    let events: EventLog
    let ipv6Prefix: Int

    func handle(_ request: ControlRequest) -> [ControlReply] {
        switch request {
        case .listLocks:
            return abuse.allLocks().map { .lock(.init($0)) } + [.ok]
        case .addLock(let text, let seconds, let reason):
            guard let key = parse(text) else { return [.error(badKey(text))] }
            let lock = abuse.addLock(key, seconds: seconds, reason: reason.isEmpty ? "added by hand" : reason, source: "admin")
            record(.locked(nil, lock, source: "admin", finding: nil))
            return [.lock(.init(lock)), .ok]
        case .removeLock(let text):
            // Also a lock kept from a smaller lock_ipv6_prefix, by its own key.
            guard let key = parse(text) ?? (try? ClientKey(stored: text, ipv6Prefix: ipv6Prefix)) else { return [.error(badKey(text))] }
            guard let lock = abuse.removeLock(key) else { return [.error("\(key) is not locked")] }
            record(.unlocked(lock, source: "admin"))
            return [.ok]
        case .show(let text):
            guard let key = parse(text) else { return [.error(badKey(text))] }
            var out: [ControlReply] = abuse.activeLock(key).map { [.lock(.init($0))] } ?? []
            for c in abuse.counters(key) {
                out.append(.counter(.init(kind: AbuseControl.storedKind(c.set, c.kind), limit: c.window.limit, seconds: c.window.seconds, count: c.count)))
            }
            return out + [.ok]
        }
    }

    private func parse(_ text: String) -> ClientKey? {
        try? ClientKey(parsing: text, ipv6Prefix: ipv6Prefix)
    }

    private func badKey(_ text: String) -> String {
        do {
            _ = try ClientKey(parsing: text, ipv6Prefix: ipv6Prefix)
            return "bad address"
        } catch {
            return "\(error)"
        }
    }

    private func record(_ e: ProxyEvent) {
        if let r = SessionLog.record(for: e, policy: LogPolicy(helo: false, mailFrom: [], rcptTo: [])) { events.record(r) }
    }
}
