#if canImport(Glibc)
import Glibc
#endif
import SMTPGateCore

/// `smtpgate locks …`: through the running daemon's control socket, or straight on the state store when
/// the daemon is down (a lock added then is seen by the daemon when it starts).
public struct LockAdmin {
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
        init(_ d: String) { description = d }
    }

    public typealias Entry = ControlReply.LockEntry
    public typealias Counter = ControlReply.Counter

    let config: Config
    /// For the limits of a listener's own counters (`LISTENER/kind` in the store).
    let listeners: [ListenerSection]
    /// Which way the last call went, for the command's own message.
    public private(set) var viaDaemon = false

    public init(config: Config, listeners: [ListenerSection] = []) {
        self.config = config
        self.listeners = listeners
    }

    /// The configured limit of a stored counter's window; 0 when the configuration no longer has it.
    func limit(_ storedKind: String, seconds: Int) -> Int {
        guard let (set, kind) = AbuseControl.parseStoredKind(storedKind) else { return 0 }
        let limits = set.isEmpty ? config.rateLimits : listeners.first { $0.name == set }?.config.rateLimits
        return limits?[kind]?.windows.first { $0.seconds == seconds }?.limit ?? 0
    }

    public mutating func list() throws(Failure) -> [Entry] {
        if let replies = try ask(.listLocks) { return replies.compactMap(\.lockEntry) }
        let now = AbuseControl.wallClock()
        return try withStore { store throws(StoreError) in
            try store.locks().filter { $0.expires.map { $0 > now } ?? true }.map(Self.entry).sorted { $0.key < $1.key }
        }
    }

    public mutating func add(_ text: String, seconds: Int?, reason: String) throws(Failure) -> Entry {
        let key = try parse(text)
        let why = reason.isEmpty ? "added by hand" : reason
        if let replies = try ask(.addLock(key: key.description, seconds: seconds, reason: why)) {
            guard let e = replies.compactMap(\.lockEntry).first else { throw Failure("the daemon did not say what it locked") }
            return e
        }
        let now = AbuseControl.wallClock()
        let stored = StoredLock(key: key.description, cause: LockCause.admin.rawValue, reason: ControlField.clean(why),
                                created: now, expires: seconds.map { now + Double($0) }, source: "admin")
        try withStore { store throws(StoreError) in try store.apply([.putLock(stored)]) }
        return Self.entry(stored)
    }

    /// A lock kept from a smaller `lock_ipv6_prefix` is removed by its own key (`2001:db8::/48`).
    public mutating func remove(_ text: String) throws(Failure) {
        let key: ClientKey
        if let stored = try? ClientKey(stored: text, ipv6Prefix: config.lockIPv6Prefix) { key = stored } else { key = try parse(text) }
        if try ask(.removeLock(key: key.description)) != nil { return }
        let now = AbuseControl.wallClock()
        let present = try withStore { store throws(StoreError) in
            try store.locks().contains { $0.key == key.description && ($0.expires.map { $0 > now } ?? true) }
        }
        guard present else { throw Failure("\(key) is not locked") }
        try withStore { store throws(StoreError) in try store.apply([.removeLock(key: key.description)]) }
    }

    /// The client's lock, if any, and its rate counters (the saved ones when the daemon is down).
    public mutating func show(_ text: String) throws(Failure) -> (lock: Entry?, counters: [Counter]) {
        let key = try parse(text)
        if let replies = try ask(.show(key: key.description)) {
            return (replies.compactMap(\.lockEntry).first, replies.compactMap(\.counterEntry))
        }
        let now = AbuseControl.wallClock()
        return try withStore { store throws(StoreError) in
            let lock = try store.locks().first { $0.key == key.description && ($0.expires.map { $0 > now } ?? true) }
            var sums: [String: Counter] = [:]
            for c in try store.counters() where c.key == key.description {
                let limit = limit(c.kind, seconds: c.seconds)
                let window = SlidingWindowCounter(seconds: c.seconds, bucketStart: c.bucketStart, current: c.current, previous: c.previous)
                let id = "\(c.kind)/\(c.seconds)"
                var sum = sums[id] ?? Counter(kind: c.kind, limit: limit, seconds: c.seconds, count: 0)
                sum.count += window.estimate(now: now)
                sums[id] = sum
            }
            return (lock.map(Self.entry), sums.values.sorted { ($0.kind, $0.seconds) < ($1.kind, $1.seconds) })
        }
    }

    private func parse(_ text: String) throws(Failure) -> ClientKey {
        do {
            return try ClientKey(parsing: text, ipv6Prefix: config.lockIPv6Prefix)
        } catch {
            throw Failure("\(error)")
        }
    }

    /// The daemon's answer, or nil when no daemon listens at `control_path`.
    private mutating func ask(_ request: ControlRequest) throws(Failure) -> [ControlReply]? {
        do {
            let replies = try ControlClient.send(request, path: config.controlPath)
            viaDaemon = true
            return replies
        } catch {
            switch error {
            case .notRunning:
                viaDaemon = false
                return nil
            case .failed(let why):
                throw Failure(why)
            }
        }
    }

    private func withStore<T>(_ body: (any StateBackend) throws(StoreError) -> T) throws(Failure) -> T {
        do {
            let store: any StateBackend
            if let url = config.stateStorePostgres {
                store = try PostgresStateStore(url: url, source: "admin")
            } else if let path = config.stateStorePath {
                store = try SQLiteStateStore(path: path, source: "admin")
            } else {
                throw Failure("state_store is neither a SQLite file nor a PostgreSQL server")
            }
            defer { store.close() }
            return try body(store)
        } catch {
            throw Failure("state_store: \(error)")
        }
    }

    static func entry(_ s: StoredLock) -> Entry {
        Entry(key: s.key, cause: s.cause, created: s.created, expires: s.expires, reason: s.reason)
    }
}

extension ControlReply {
    var lockEntry: LockEntry? {
        if case .lock(let e) = self { return e }
        return nil
    }

    var counterEntry: Counter? {
        if case .counter(let c) = self { return c }
        return nil
    }
}
