#if canImport(Glibc)
import Glibc
#endif
import NIOConcurrencyHelpers
import SMTPGateCore

/// The locks and rate counters of every real client this proxy knows, shared by all event loops behind one
/// lock held only for table updates. Decisions come from memory; the state store is written behind them
/// (`StateWriter`) and other proxies' locks and counts arrive from it within a few seconds: a limit is
/// checked against this proxy's count plus what the others last shared (`PeerCounters`).
final class AbuseControl: @unchecked Sendable {
    struct Settings: Equatable {
        var locking: LockSettings
        var exempt: [CIDR]
        var natSources: AllowList
        var lockPrefix: Int
        var ratePrefix: Int
        var limits: [RateKind: RateLimitSpec]
        var capacity: Int
        var overrides: RateOverrides

        init(_ c: Config) {
            overrides = c.rateOverrides
            locking = LockSettings(config: c)
            exempt = c.lockExempt
            natSources = AllowList(c.natSources)
            lockPrefix = c.lockIPv6Prefix
            ratePrefix = c.ratelimitIPv6Prefix
            limits = c.rateLimits
            capacity = c.ratelimitClients
        }

        static func == (a: Settings, b: Settings) -> Bool {
            a.locking == b.locking && a.exempt == b.exempt && a.natSources.prefixes == b.natSources.prefixes
                && a.lockPrefix == b.lockPrefix && a.ratePrefix == b.ratePrefix && a.limits == b.limits
                && a.capacity == b.capacity && a.overrides == b.overrides
        }
    }

    private let mutex = NIOLock()
    private var settings: Settings
    private var locks: LockTable
    private var rates: RateTable
    private var peers: PeerCounters
    private let now: @Sendable () -> Double
    /// Where changes are written behind; nil in tests that need no store.
    let writer: StateWriter?
    /// This proxy's name in the store, so proxies sharing it keep their own counters.
    let source: String

    init(config: Config, writer: StateWriter?, source: String, now: @escaping @Sendable () -> Double = AbuseControl.wallClock) {
        let s = Settings(config)
        settings = s
        locks = LockTable(duration: s.locking.duration, exempt: AllowList(s.exempt))
        rates = RateTable(limits: s.limits, capacity: s.capacity, ipv6Prefix: s.ratePrefix)
        peers = PeerCounters(capacity: s.capacity)
        self.writer = writer
        self.source = source
        self.now = now
    }

    @Sendable static func wallClock() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    var lockSettings: LockSettings { mutex.withLock { settings.locking } }
    var hasRateLimits: Bool { mutex.withLock { !settings.limits.isEmpty } }
    var time: Double { now() }

    /// A reload: locks are kept; counters are kept too, carried over when the limits themselves changed.
    func reconfigure(_ config: Config) {
        let s = Settings(config)
        mutex.withLock {
            guard s != settings else { return }
            let t = now()
            var newLocks = LockTable(duration: s.locking.duration, exempt: AllowList(s.exempt))
            // Under a smaller lock_ipv6_prefix a longer-prefix lock widens to it; a shorter one still covers.
            for l in locks.all(now: t) {
                newLocks.add(ClientLock(key: l.key.widened(to: s.lockPrefix), cause: l.cause, reason: l.reason,
                                        created: l.created, expires: l.expires))
            }
            locks = newLocks
            if s.limits != settings.limits || s.capacity != settings.capacity || s.ratePrefix != settings.ratePrefix {
                let kept = rates.records(now: t)
                rates = RateTable(limits: s.limits, capacity: s.capacity, ipv6Prefix: s.ratePrefix)
                rates.restore(kept, now: t)
                // The others' copies come back with their next rows, keyed by the new prefix.
                peers = PeerCounters(capacity: s.capacity)
            }
            settings = s
        }
    }

    /// Whom a connection from `address` is counted against; nil for a NAT source (a router that SNATs: its
    /// address stands for many customers, so it is never locked or limited as one).
    func keys(address: [UInt8], ident: String?) -> (lock: ClientKey, rate: ClientKey)? {
        mutex.withLock {
            guard !settings.natSources.allows(address) else { return nil }
            return (ClientKey(address: address, ipv6Prefix: settings.lockPrefix, ident: ident),
                    ClientKey(address: address, ipv6Prefix: settings.ratePrefix, ident: ident))
        }
    }

    // MARK: Locks

    /// The lock in force for `key`; one made for the address alone also covers its idents.
    func activeLock(_ key: ClientKey) -> ClientLock? {
        let t = now()
        return mutex.withLock {
            if let l = locks.active(key, now: t) { return l }
            guard key.ident != nil else { return nil }
            return locks.active(key.withoutIdent, now: t)
        }
    }

    /// Locks the client for a finding whose cause is in `lock_on`; the new lock, or nil (not a lock cause,
    /// already locked, exempt, full).
    func lock(_ key: ClientKey, for finding: Finding.Kind) -> ClientLock? {
        guard let cause = finding.lockCause else { return nil }
        let t = now()
        let outcome: LockOutcome? = mutex.withLock {
            guard settings.locking.locks(cause) else { return nil }
            return locks.lock(key, cause: cause, reason: finding.lockReason, now: t)
        }
        guard case .locked(let lock)? = outcome else { return nil }
        writer?.submit(.putLock(stored(lock, source: source)))
        return lock
    }

    /// A lock by hand (`smtpgate locks add`): no exemption applies, the administrator asked for it.
    func addLock(_ key: ClientKey, seconds: Int?, reason: String, source by: String) -> ClientLock {
        let t = now()
        let lock = ClientLock(key: key, cause: .admin, reason: reason, created: t, expires: seconds.map { t + Double($0) })
        _ = mutex.withLock { locks.add(lock) }
        writer?.submit(.putLock(stored(lock, source: by)))
        return lock
    }

    func removeLock(_ key: ClientKey) -> ClientLock? {
        let removed = mutex.withLock { locks.remove(key) }
        if removed != nil { writer?.submit(.removeLock(key: key.description)) }
        return removed
    }

    func allLocks() -> [ClientLock] {
        let t = now()
        return mutex.withLock { locks.all(now: t) }
    }

    /// Locks another writer of the store made or removed (another proxy, the admin command with the daemon down).
    func absorb(_ changes: [LockChange]) {
        let (prefix, t) = (mutex.withLock { settings.lockPrefix }, now())
        mutex.withLock {
            for change in changes {
                switch change {
                case .put(let s):
                    if let l = Self.lock(s, ipv6Prefix: prefix), l.isActive(now: t) { locks.add(l) }
                case .removed(let key, _):
                    if let k = try? ClientKey(stored: key, ipv6Prefix: prefix) { _ = locks.remove(k) }
                }
            }
        }
    }

    // MARK: Rates

    /// The first of `kinds` whose window is full; nothing is counted.
    func exceeded(_ key: ClientKey, _ kinds: [RateKind]) -> RateExceeded? {
        let t = now()
        return mutex.withLock {
            for kind in kinds {
                if let e = check(key, kind, now: t) { return e }
            }
            return nil
        }
    }

    /// The configured limits, or the client's own (`ratelimit_override`), on this proxy's counters plus
    /// the other proxies' (destinations: this proxy's alone). Under the lock.
    private func check(_ key: ClientKey, _ kind: RateKind, now: Double) -> RateExceeded? {
        let override = settings.overrides.count > 0 ? settings.overrides.spec(for: key.address, kind) : nil
        guard override != nil || (!peers.isEmpty && kind != .destinations) else {
            return rates.exceeded(key, kind, now: now)
        }
        // An override only changes the limits: windows it names that are not configured count nothing.
        let configured = settings.limits[kind]?.windows ?? []
        for w in override?.windows ?? configured where configured.contains(where: { $0.seconds == w.seconds }) {
            let count = total(key, kind, seconds: w.seconds, now: now)
            if count >= Double(w.limit) { return RateExceeded(kind: kind, window: w, count: Int(min(count, 9e18))) }
        }
        return nil
    }

    private func total(_ key: ClientKey, _ kind: RateKind, seconds: Int, now: Double) -> Double {
        let own = rates.estimate(key, kind, seconds: seconds, now: now)
        return kind == .destinations ? own : own + peers.estimate(key, kind, seconds: seconds, now: now)
    }

    func record(_ key: ClientKey, _ kind: RateKind, amount: Double = 1) {
        let t = now()
        mutex.withLock { rates.record(key, kind, amount: amount, now: t) }
    }

    /// A new connection to `destination`: refused when `ratelimit_connections` is full or it would be a
    /// new destination past `ratelimit_destinations` (one the client already uses is never refused),
    /// else counted. Checked and counted under one hold of the lock, so connections accepted at once on
    /// several event loops cannot all pass a limit that has room for one.
    func admitConnection(_ key: ClientKey, to destination: String) -> RateExceeded? {
        let t = now()
        let hash = Self.fnv1a(destination)
        return mutex.withLock {
            if let e = check(key, .connections, now: t) { return e }
            if !rates.knowsDestination(key, hash: hash, now: t), let e = check(key, .destinations, now: t) { return e }
            rates.record(key, .connections, now: t)
            rates.recordDestination(key, hash: hash, now: t)
            return nil
        }
    }

    /// Every configured window with the pool's count (this proxy's plus the others'), for `smtpgate locks
    /// show`; empty when no proxy counted anything for the client.
    func counters(_ key: ClientKey) -> [(kind: RateKind, window: RateWindow, count: Double)] {
        let t = now()
        return mutex.withLock {
            let own = rates.counters(key, now: t)
            let windows = RateKind.allCases.flatMap { k in (settings.limits[k]?.windows ?? []).map { (kind: k, window: $0) } }
            let all = windows.map { w in (kind: w.kind, window: w.window, count: total(key, w.kind, seconds: w.window.seconds, now: t)) }
            return own.isEmpty && all.allSatisfy({ $0.count == 0 }) ? [] : all
        }
    }

    var trackedClients: Int { mutex.withLock { rates.count } }
    /// Clients with counts from other proxies of the pool.
    var peerClients: Int { mutex.withLock { peers.count } }

    // MARK: Housekeeping and the store

    /// Bounded work, called about once a second: expired locks go, idle clients are forgotten.
    func tidy() {
        let t = now()
        let expired = mutex.withLock { () -> [ClientLock] in
            _ = rates.sweep(now: t, limit: 10_000)
            _ = peers.sweep(now: t, limit: 10_000)
            return locks.expire(now: t, limit: 10_000)
        }
        if !expired.isEmpty { writer?.submit(.pruneExpired(before: t)) }
    }

    /// The counters of the clients counted since the last call, for the store and so for the other
    /// proxies of a pool (every `AbuseService.shareEvery` seconds and at shutdown). At most `limit` clients
    /// a call; the rest go with the next. Returns how many rows were submitted.
    @discardableResult
    func shareCounters(limit: Int = AbuseControl.sharedClientsMax) -> Int {
        guard let writer else { return 0 }
        let t = now()
        let records = mutex.withLock { rates.takeChanged(limit: limit, now: t) }
        for r in records {
            writer.submit(.putCounter(StoredCounter(key: r.key, kind: r.kind.rawValue, seconds: r.seconds,
                                                    bucketStart: r.bucketStart, current: r.current,
                                                    previous: r.previous, source: source)))
        }
        return records.count
    }

    /// Clients shared per call: with the writer's bound on pending changes, a burst of new clients is
    /// spread over several calls rather than dropped.
    static let sharedClientsMax = 20_000

    /// Counter rows other proxies wrote (from the store's feed).
    func absorb(counters rows: [StoredCounter]) {
        let t = now()
        mutex.withLock {
            let prefix = settings.ratePrefix
            for c in rows where c.source != source {
                guard let kind = RateKind(rawValue: c.kind), settings.limits[kind] != nil else { continue }
                peers.absorb(RateRecord(key: c.key, kind: kind, seconds: c.seconds, bucketStart: c.bucketStart,
                                        current: c.current, previous: c.previous),
                             source: c.source, ipv6Prefix: prefix, now: t)
            }
        }
    }

    /// At start: the store's locks, this proxy's own counters, and the other proxies' counts.
    func restore(locks stored: [StoredLock], counters: [StoredCounter]) {
        defer { absorb(counters: counters) }
        let t = now()
        mutex.withLock {
            for s in stored {
                if let l = Self.lock(s, ipv6Prefix: settings.lockPrefix), l.isActive(now: t) { locks.add(l) }
            }
            let mine = counters.compactMap { c -> RateRecord? in
                guard c.source == source, let kind = RateKind(rawValue: c.kind) else { return nil }
                return RateRecord(key: c.key, kind: kind, seconds: c.seconds, bucketStart: c.bucketStart,
                                  current: c.current, previous: c.previous)
            }
            rates.restore(mine, now: t)
        }
    }

    static func lock(_ s: StoredLock, ipv6Prefix: Int) -> ClientLock? {
        // Times from the store are checked: another writer (or a hand edit) may have put anything there.
        let sane: (Double) -> Bool = { $0.isFinite && $0 >= 0 && $0 < 1e11 }
        guard let key = try? ClientKey(stored: s.key, ipv6Prefix: ipv6Prefix),
              let cause = LockCause(rawValue: s.cause), sane(s.created), s.expires.map(sane) ?? true else { return nil }
        return ClientLock(key: key, cause: cause, reason: s.reason, created: s.created, expires: s.expires)
    }

    func stored(_ l: ClientLock, source: String) -> StoredLock {
        StoredLock(key: l.key.description, cause: l.cause.rawValue, reason: l.reason, created: l.created,
                   expires: l.expires, source: source)
    }

    /// Stable across restarts and processes (Swift's own hashing is seeded per process).
    static func fnv1a(_ s: String) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in s.utf8 {
            h ^= UInt64(b)
            h = h &* 0x0000_0100_0000_01b3
        }
        return h
    }
}
