import NIOCore
import SMTPGateCore
import SMTPGateRuntime

/// The daemon's side of `status`, `reload` and `stop`.
struct DaemonControl: Sendable {
    var status: @Sendable (EventLoop) -> EventLoopFuture<DaemonStatus>
    /// nil when the new file was taken, else why not (the running configuration stays).
    var reload: @Sendable (EventLoop) -> EventLoopFuture<String?>
    var stop: @Sendable () -> Void

    /// For tests of the lock requests alone.
    static let none = DaemonControl(status: { $0.makeFailedFuture(ControlUnavailable()) },
                                    reload: { $0.makeSucceededFuture("not available") }, stop: {})
}

struct ControlUnavailable: Error, CustomStringConvertible {
    var description: String { "not available" }
}

/// What the daemon does for each control request: works on the live tables, so a change applies to the
/// next connection (and through the store, to every proxy sharing it).
struct ControlService {
    /// nil when abuse control is off: lock requests are answered with why.
    let abuse: AbuseControl?
    let events: EventLog
    let ipv6Prefix: Int
    var daemon = DaemonControl.none
    /// Counts a lock made by hand where the session-made ones are counted.
    var lockAdded: @Sendable (ClientLock) -> Void = { _ in }

    func handle(_ request: ControlRequest, on loop: EventLoop) -> EventLoopFuture<[ControlReply]> {
        switch request {
        case .status:
            return daemon.status(loop).map { $0.replies + [.ok] }.flatMapErrorThrowing { [.error("\($0)")] }
        case .reload:
            return daemon.reload(loop).map { failure in failure.map { [.error($0)] } ?? [.ok] }
        case .stop:
            daemon.stop()
            return loop.makeSucceededFuture([.ok])
        case .listLocks, .addLock, .removeLock, .show:
            guard let abuse else {
                return loop.makeSucceededFuture([.error("abuse control is off (no lock_on, ratelimit_* or state_store): there are no locks")])
            }
            return loop.makeSucceededFuture(locks(request, abuse))
        }
    }

    private func locks(_ request: ControlRequest, _ abuse: AbuseControl) -> [ControlReply] {
        switch request {
        case .status, .reload, .stop:
            return [.error("not a lock request")]
        case .listLocks:
            return abuse.allLocks().map { .lock(.init($0)) } + [.ok]
        case .addLock(let text, let seconds, let reason):
            guard let key = parse(text) else { return [.error(badKey(text))] }
            let lock = abuse.addLock(key, seconds: seconds, reason: reason.isEmpty ? "added by hand" : reason, source: "admin")
            record(.locked(nil, lock, source: "admin", finding: nil))
            lockAdded(lock)
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
