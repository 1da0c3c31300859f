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
        /// The global options' `lock_on`/`lock_duration`, for listeners without their own.
        var locking: LockSettings
        var listenerLocking: [String: LockSettings]
        var exempt: [CIDR]
        var natSources: AllowList
        var lockPrefix: Int
        var ratePrefix: Int
        /// Which counters each listener uses: "" (the global limits, one count across all listeners that
        /// keep them) or its own name (a listener with its own `ratelimit_*` counts its own sessions only).
        var rateSet: [String: String]
        var limits: [String: [RateKind: RateLimitSpec]]
        var capacity: Int
        var overrides: RateOverrides

        init(_ file: ConfigFile) {
            let c = file.global
            overrides = c.rateOverrides
            locking = LockSettings(config: c)
            exempt = c.lockExempt
            natSources = AllowList(c.natSources)
            lockPrefix = c.lockIPv6Prefix
            ratePrefix = c.ratelimitIPv6Prefix
            capacity = c.ratelimitClients
            limits = ["": c.rateLimits]
            listenerLocking = [:]
            rateSet = [:]
            for l in file.listeners {
                listenerLocking[l.name] = LockSettings(config: l.config)
                let set = l.config.rateLimits == c.rateLimits ? "" : l.name
                rateSet[l.name] = set
                limits[set] = l.config.rateLimits
            }
        }

        static func == (a: Settings, b: Settings) -> Bool {
            a.locking == b.locking && a.listenerLocking == b.listenerLocking && a.exempt == b.exempt
                && a.natSources.prefixes == b.natSources.prefixes && a.lockPrefix == b.lockPrefix
                && a.ratePrefix == b.ratePrefix && a.rateSet == b.rateSet && a.limits == b.limits
                && a.capacity == b.capacity && a.overrides == b.overrides
        }
    }

    /// One set of counters: this proxy's own and what the other proxies of a pool last shared.
    final class RateSet {
        var table: RateTable
        var peers: PeerCounters

        init(limits: [RateKind: RateLimitSpec], settings s: Settings) {
            table = RateTable(limits: limits, capacity: s.capacity, ipv6Prefix: s.ratePrefix)
            peers = PeerCounters(capacity: s.capacity)
        }
    }

    private let mutex = NIOLock()
    private var settings: Settings
    private var locks: LockTable
    private var sets: [String: RateSet]
    private let now: @Sendable () -> Double
    /// Where changes are written behind; nil in tests that need no store.
    let writer: StateWriter?
    /// This proxy's name in the store, so proxies sharing it keep their own counters.
    let source: String

    convenience init(config: Config, writer: StateWriter?, source: String,
                     now: @escaping @Sendable () -> Double = AbuseControl.wallClock) {
        self.init(file: Self.single(config), writer: writer, source: source, now: now)
    }

    init(file: ConfigFile, writer: StateWriter?, source: String, now: @escaping @Sendable () -> Double = AbuseControl.wallClock) {
        let s = Settings(file)
        settings = s
        locks = LockTable(duration: s.locking.duration, exempt: AllowList(s.exempt))
        sets = s.limits.mapValues { RateSet(limits: $0, settings: s) }
        self.writer = writer
        self.source = source
        self.now = now
    }

    /// A file without sections: its one listener has the global options.
    static func single(_ c: Config) -> ConfigFile {
        ConfigFile(global: c, listeners: [ListenerSection(name: ConfigFile.mainListener, config: c)])
    }

    @Sendable static func wallClock() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    /// `lock_on` and `lock_duration` of `listener` (the global ones for a name the file does not have).
    func lockSettings(listener: String?) -> LockSettings {
        mutex.withLock { Self.locking(settings, listener) }
    }

    private static func locking(_ s: Settings, _ listener: String?) -> LockSettings {
        listener.flatMap { s.listenerLocking[$0] } ?? s.locking
    }

    var time: Double { now() }

    /// The counters `listener` uses and their name; under the lock.
    private func rates(_ listener: String?) -> (name: String, set: RateSet) {
        let name = listener.flatMap { settings.rateSet[$0] } ?? ""
        if let set = sets[name] { return (name, set) }
        return ("", sets[""]!)
    }

    func reconfigure(_ config: Config) { reconfigure(Self.single(config)) }

    /// A reload: locks are kept; counters are kept too, carried over when the limits themselves changed.
    /// A listener that gets its own limits starts counting afresh; one that drops them joins the global count.
    func reconfigure(_ file: ConfigFile) {
        let s = Settings(file)
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
            let sameShape = s.capacity == settings.capacity && s.ratePrefix == settings.ratePrefix
            var next: [String: RateSet] = [:]
            for (name, limits) in s.limits {
                if let old = sets[name], sameShape, settings.limits[name] == limits {
                    next[name] = old
                    continue
                }
                let fresh = RateSet(limits: limits, settings: s)
                // The others' copies come back with their next rows, keyed by the new prefix.
                if let old = sets[name] { fresh.table.restore(old.table.records(now: t), now: t) }
                next[name] = fresh
            }
            sets = next
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
    func lock(_ key: ClientKey, for finding: Finding.Kind, listener: String? = nil) -> ClientLock? {
        guard let cause = finding.lockCause else { return nil }
        let t = now()
        let outcome: LockOutcome? = mutex.withLock {
            let locking = Self.locking(settings, listener)
            guard locking.locks(cause) else { return nil }
            return locks.lock(key, cause: cause, reason: finding.lockReason, duration: locking.duration, now: t)
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

    /// The first of `kinds` whose window is full on `listener`'s counters; nothing is counted.
    func exceeded(_ key: ClientKey, _ kinds: [RateKind], listener: String? = nil) -> RateExceeded? {
        let t = now()
        return mutex.withLock {
            let r = rates(listener)
            for kind in kinds {
                if let e = check(key, kind, r, now: t) { return e }
            }
            return nil
        }
    }

    /// The configured limits, or the client's own (`ratelimit_override`), on this proxy's counters plus
    /// the other proxies' (destinations: this proxy's alone). Under the lock.
    private func check(_ key: ClientKey, _ kind: RateKind, _ r: (name: String, set: RateSet), now: Double) -> RateExceeded? {
        let override = settings.overrides.count > 0 ? settings.overrides.spec(for: key.address, kind) : nil
        guard override != nil || (!r.set.peers.isEmpty && kind != .destinations) else {
            return r.set.table.exceeded(key, kind, now: now)
        }
        // An override only changes the limits: windows it names that are not configured count nothing.
        let configured = settings.limits[r.name]?[kind]?.windows ?? []
        for w in override?.windows ?? configured where configured.contains(where: { $0.seconds == w.seconds }) {
            let count = total(key, kind, r.set, seconds: w.seconds, now: now)
            if count >= Double(w.limit) { return RateExceeded(kind: kind, window: w, count: Int(min(count, 9e18))) }
        }
        return nil
    }

    private func total(_ key: ClientKey, _ kind: RateKind, _ set: RateSet, seconds: Int, now: Double) -> Double {
        let own = set.table.estimate(key, kind, seconds: seconds, now: now)
        return kind == .destinations ? own : own + set.peers.estimate(key, kind, seconds: seconds, now: now)
    }

    func record(_ key: ClientKey, _ kind: RateKind, amount: Double = 1, listener: String? = nil) {
        let t = now()
        mutex.withLock { rates(listener).set.table.record(key, kind, amount: amount, now: t) }
    }

    /// A new connection to `destination`: refused when `ratelimit_connections` is full or it would be a
    /// new destination past `ratelimit_destinations` (one the client already uses is never refused),
    /// else counted. Checked and counted under one hold of the lock, so connections accepted at once on
    /// several event loops cannot all pass a limit that has room for one.
    func admitConnection(_ key: ClientKey, to destination: String, listener: String? = nil) -> RateExceeded? {
        let t = now()
        let hash = Self.fnv1a(destination)
        return mutex.withLock {
            let r = rates(listener)
            if let e = check(key, .connections, r, now: t) { return e }
            if !r.set.table.knowsDestination(key, hash: hash, now: t), let e = check(key, .destinations, r, now: t) { return e }
            r.set.table.record(key, .connections, now: t)
            r.set.table.recordDestination(key, hash: hash, now: t)
            return nil
        }
    }

    /// Every configured window with the pool's count (this proxy's plus the others'), for `smtpgate locks
    /// show`: the global counters first (`set` ""), then each listener's own; a set where no proxy counted
    /// anything for the client is left out.
    func counters(_ key: ClientKey) -> [(set: String, kind: RateKind, window: RateWindow, count: Double)] {
        let t = now()
        return mutex.withLock {
            var out: [(set: String, kind: RateKind, window: RateWindow, count: Double)] = []
            for name in sets.keys.sorted() {
                let set = sets[name]!
                let own = set.table.counters(key, now: t)
                let limits = settings.limits[name] ?? [:]
                let windows = RateKind.allCases.flatMap { k in (limits[k]?.windows ?? []).map { (kind: k, window: $0) } }
                let all = windows.map { w in
                    (set: name, kind: w.kind, window: w.window, count: total(key, w.kind, set, seconds: w.window.seconds, now: t))
                }
                if !own.isEmpty || !all.allSatisfy({ $0.count == 0 }) { out += all }
            }
            return out
        }
    }

    var trackedClients: Int { mutex.withLock { sets.values.reduce(0) { $0 + $1.table.count } } }
    /// Clients with counts from other proxies of the pool.
    var peerClients: Int { mutex.withLock { sets.values.reduce(0) { $0 + $1.peers.count } } }

    // MARK: Housekeeping and the store

    /// Bounded work, called about once a second: expired locks go, idle clients are forgotten.
    func tidy() {
        let t = now()
        let expired = mutex.withLock { () -> [ClientLock] in
            for set in sets.values {
                _ = set.table.sweep(now: t, limit: 10_000)
                _ = set.peers.sweep(now: t, limit: 10_000)
            }
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
        let taken = mutex.withLock { () -> [(set: String, records: [RateRecord])] in
            var left = limit
            var out: [(set: String, records: [RateRecord])] = []
            for name in sets.keys.sorted() where left > 0 {
                let records = sets[name]!.table.takeChanged(limit: left, now: t)
                left -= records.count
                out.append((name, records))
            }
            return out
        }
        var submitted = 0
        for (set, records) in taken {
            for r in records {
                writer.submit(.putCounter(StoredCounter(key: r.key, kind: Self.storedKind(set, r.kind), seconds: r.seconds,
                                                        bucketStart: r.bucketStart, current: r.current,
                                                        previous: r.previous, source: source)))
            }
            submitted += records.count
        }
        return submitted
    }

    /// Clients shared per call: with the writer's bound on pending changes, a burst of new clients is
    /// spread over several calls rather than dropped.
    static let sharedClientsMax = 20_000

    /// A counter's kind in the store: `messages` for the global counters, `LISTENER/messages` for a
    /// listener's own (a proxy that does not know the listener skips them).
    static func storedKind(_ set: String, _ kind: RateKind) -> String {
        set.isEmpty ? kind.rawValue : "\(set)/\(kind.rawValue)"
    }

    static func parseStoredKind(_ text: String) -> (set: String, kind: RateKind)? {
        guard let slash = text.lastIndex(of: "/") else { return RateKind(rawValue: text).map { ("", $0) } }
        let set = String(text[..<slash])
        guard !set.isEmpty, let kind = RateKind(rawValue: String(text[text.index(after: slash)...])) else { return nil }
        return (set, kind)
    }

    /// Counter rows other proxies wrote (from the store's feed).
    func absorb(counters rows: [StoredCounter]) {
        let t = now()
        mutex.withLock {
            let prefix = settings.ratePrefix
            for c in rows where c.source != source {
                guard let (name, kind) = Self.parseStoredKind(c.kind), settings.limits[name]?[kind] != nil,
                      let set = sets[name] else { continue }
                set.peers.absorb(RateRecord(key: c.key, kind: kind, seconds: c.seconds, bucketStart: c.bucketStart,
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
            var mine: [String: [RateRecord]] = [:]
            for c in counters where c.source == source {
                guard let (name, kind) = Self.parseStoredKind(c.kind) else { continue }
                mine[name, default: []].append(RateRecord(key: c.key, kind: kind, seconds: c.seconds, bucketStart: c.bucketStart,
                                                          current: c.current, previous: c.previous))
            }
            for (name, records) in mine { sets[name]?.table.restore(records, now: t) }
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
