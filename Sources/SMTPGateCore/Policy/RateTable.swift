/// The rate counters of every tracked client. Only configured kinds have counters; each tracked client
/// holds one `SlidingWindowCounter` per configured window (a `DistinctCounter` for destinations).
///
/// Storage is one slot per client in flat arrays, found through a hash index, so a check or a record
/// is a hash lookup plus a few counters whatever the number of clients, and allocates nothing once
/// the client is tracked. Slots are reused, never shrunk, and never more than `capacity`.
///
/// Memory: `bytesPerClient` for the configured windows, computed from the real layouts (and checked
/// by a test). With `ClientKey` at 40 bytes and a counter at 24 on 64-bit Linux, a client costs 40
/// (key) + 9 (insertion list, changed flag) + 24 per window + its index entry (44 bytes at a load between 3/4 and
/// 3/8, so 59 to 118): with four windows (say connections and messages, per hour and per day) 204 to
/// 263 bytes, at most about 263 MB for a million clients. A destinations window adds a
/// `DistinctCounter` (56 bytes) plus up to twice (limit + 1) stored hashes of 8 bytes each (more with
/// the sets' spare room).
///
/// A destinations limit above 65535 can never trip: distinct counting stops there.
/// Pure bookkeeping: the caller serialises access.
public struct RateTable: Sendable {
    public let limits: [RateKind: RateLimitSpec]
    public let capacity: Int
    public let ipv6Prefix: Int

    /// Summed windows, in kind order; destinations windows separately in `distinctWindows`.
    private let windows: [(kind: RateKind, window: RateWindow)]
    private let distinctWindows: [RateWindow]
    /// Per `RateKind.ordinal`: which of `windows` (or of `distinctWindows`) belong to it.
    private let ranges: [Range<Int>]
    private let freshCounters: [SlidingWindowCounter]
    private let freshDistinct: [DistinctCounter]

    private var index: [ClientKey: Int32] = [:]
    private var keys: [ClientKey?] = []
    private var counters: [SlidingWindowCounter] = []
    private var distinct: [DistinctCounter] = []
    /// Insertion order, oldest first, as a doubly linked list through the slots (-1 = none).
    private var older: [Int32] = []
    private var newer: [Int32] = []
    private var oldest: Int32 = -1
    private var newest: Int32 = -1
    private var free: [Int32] = []
    private var cursor = 0
    /// Slots counted since the last `takeChanged`, for the store and the other proxies of a pool. A
    /// slot is listed once while `changed[s]` is set; a released slot's flag is cleared, so a stale
    /// entry is skipped.
    private var changed: [Bool] = []
    private var changedList: [Int32] = []

    /// How many slots a full table looks at for an idle client before evicting the oldest one.
    static let evictionSearch = 8

    /// `capacity` is clamped to 1...Int32.max; kinds whose spec is off take no memory.
    public init(limits: [RateKind: RateLimitSpec], capacity: Int, ipv6Prefix: Int = 64) {
        self.limits = limits.filter { !$0.value.isOff }
        self.capacity = min(max(capacity, 1), Int(Int32.max))
        self.ipv6Prefix = ipv6Prefix
        var windows: [(kind: RateKind, window: RateWindow)] = []
        var distinctWindows: [RateWindow] = []
        var ranges: [Range<Int>] = []
        for kind in RateKind.allCases {
            let ws = self.limits[kind]?.windows ?? []
            if kind == .destinations {
                ranges.append(distinctWindows.count..<distinctWindows.count + ws.count)
                distinctWindows += ws
            } else {
                ranges.append(windows.count..<windows.count + ws.count)
                windows += ws.map { (kind, $0) }
            }
        }
        self.windows = windows
        self.distinctWindows = distinctWindows
        self.ranges = ranges
        freshCounters = windows.map { SlidingWindowCounter(seconds: $0.window.seconds) }
        freshDistinct = distinctWindows.map { DistinctCounter(seconds: $0.seconds, cap: Self.distinctCap($0.limit)) }
    }

    /// Clients tracked now.
    public var count: Int { index.count }

    /// Bytes of table memory per tracked client for the configured windows, not counting the hashes a
    /// destinations counter stores. The index is counted at its worst load (3/8, just after it grew).
    public var bytesPerClient: Int {
        let slot = MemoryLayout<ClientKey?>.stride + 2 * MemoryLayout<Int32>.stride + MemoryLayout<Bool>.stride
            + windows.count * MemoryLayout<SlidingWindowCounter>.stride
            + distinctWindows.count * MemoryLayout<DistinctCounter>.stride
        let indexEntry = MemoryLayout<ClientKey>.stride + MemoryLayout<Int32>.stride
        return slot + (indexEntry * 8 + 2) / 3
    }

    /// The first window (shortest first) whose estimate has reached its limit. Ask before an attempt
    /// and refuse without recording it, so that a limited client gets through again as the window slides.
    public func exceeded(_ key: ClientKey, _ kind: RateKind, now: Double) -> RateExceeded? {
        let range = ranges[kind.ordinal]
        guard !range.isEmpty, let s = index[key] else { return nil }
        for j in range {
            let window = kind == .destinations ? distinctWindows[j] : windows[j].window
            let estimate = kind == .destinations
                ? distinct[Int(s) * distinctWindows.count + j].estimate(now: now)
                : counters[Int(s) * windows.count + j].estimate(now: now)
            if estimate >= Double(window.limit) {
                return RateExceeded(kind: kind, window: window, count: estimate < 9e18 ? Int(estimate) : Int.max)
            }
        }
        return nil
    }

    /// This client's estimate for the `seconds`-long window of `kind`; 0 when it is not tracked or
    /// that window is not configured.
    public func estimate(_ key: ClientKey, _ kind: RateKind, seconds: Int, now: Double) -> Double {
        let range = ranges[kind.ordinal]
        guard !range.isEmpty, let s = index[key].map(Int.init) else { return 0 }
        for j in range {
            if kind == .destinations {
                if distinctWindows[j].seconds == seconds { return distinct[s * distinctWindows.count + j].estimate(now: now) }
            } else if windows[j].window.seconds == seconds {
                return counters[s * windows.count + j].estimate(now: now)
            }
        }
        return 0
    }

    /// Counts `amount` for a summed kind; destinations are counted by `recordDestination`.
    public mutating func record(_ key: ClientKey, _ kind: RateKind, amount: Double = 1, now: Double) {
        let range = ranges[kind.ordinal]
        guard !range.isEmpty, kind != .destinations else { return }
        let s = slot(for: key, now: now)
        let base = s * windows.count
        for j in range { counters[base + j].add(amount, now: now) }
        markChanged(s)
    }

    /// True when every destinations window already counts `hash` for this client (it is no new destination).
    public func knowsDestination(_ key: ClientKey, hash: UInt64, now: Double) -> Bool {
        let range = ranges[RateKind.destinations.ordinal]
        guard !range.isEmpty, let s = index[key].map(Int.init) else { return false }
        return range.allSatisfy { distinct[s * distinctWindows.count + $0].contains(hash, now: now) }
    }

    public mutating func recordDestination(_ key: ClientKey, hash: UInt64, now: Double) {
        let range = ranges[RateKind.destinations.ordinal]
        guard !range.isEmpty else { return }
        let s = slot(for: key, now: now)
        let base = s * distinctWindows.count
        for j in range { distinct[base + j].insert(hash, now: now) }
        markChanged(s)
    }

    /// Clients counted since the last call waiting to be taken.
    public var changedCount: Int { changedList.count }

    /// The counters of up to `limit` clients counted since the last call, oldest change first; the rest
    /// stay for the next call. Restored counters are not changes: the store already holds them.
    public mutating func takeChanged(limit: Int, now: Double) -> [RateRecord] {
        var out: [RateRecord] = []
        var taken = 0
        var used = 0
        while used < changedList.count, taken < limit {
            let s = Int(changedList[used])
            used += 1
            guard changed[s] else { continue }
            changed[s] = false
            taken += 1
            out += records(slot: s, now: now)
        }
        changedList.removeFirst(used)
        return out
    }

    private mutating func markChanged(_ s: Int) {
        guard !changed[s] else { return }
        changed[s] = true
        changedList.append(Int32(s))
    }

    /// Every configured window of a tracked client with its estimate, for `smtpgate locks show`;
    /// empty for a client not tracked.
    public func counters(_ key: ClientKey, now: Double) -> [(kind: RateKind, window: RateWindow, count: Double)] {
        guard let s = index[key].map(Int.init) else { return [] }
        return windows.indices.map { j in (windows[j].kind, windows[j].window, counters[s * windows.count + j].estimate(now: now)) }
            + distinctWindows.indices.map { j in (.destinations, distinctWindows[j], distinct[s * distinctWindows.count + j].estimate(now: now)) }
    }

    /// Drops idle clients (every window idle), looking at no more than `limit` slots; returns how many
    /// were dropped. Cheap enough to call on every accept with a small limit.
    public mutating func sweep(now: Double, limit: Int) -> Int {
        var dropped = 0
        for _ in 0..<min(max(limit, 0), keys.count) {
            let s = nextCursor()
            if keys[s] != nil, isIdle(s, now: now) {
                release(s)
                dropped += 1
            }
        }
        return dropped
    }

    /// Every counter still in reach, for the store and the other proxies of a pool.
    public func records(now: Double) -> [RateRecord] {
        var out: [RateRecord] = []
        for s in keys.indices { out += records(slot: s, now: now) }
        return out
    }

    private func records(slot s: Int, now: Double) -> [RateRecord] {
        var out: [RateRecord] = []
        guard let key = keys[s] else { return out }
        let name = key.description
        for (j, w) in windows.enumerated() {
            let c = counters[s * windows.count + j]
            guard !c.isIdle(now: now) else { continue }
            out.append(RateRecord(key: name, kind: w.kind, seconds: c.seconds, bucketStart: c.bucketStart,
                                  current: c.current, previous: c.previous))
        }
        for j in distinctWindows.indices {
            let d = distinct[s * distinctWindows.count + j]
            guard !d.isIdle(now: now) else { continue }
            out.append(RateRecord(key: name, kind: .destinations, seconds: d.seconds, bucketStart: d.bucketStart,
                                  current: d.counts.current, previous: d.counts.previous))
        }
        return out
    }

    /// Takes counters back from `records`: a record replaces the counter it names. Records for a kind
    /// or window length not configured now, with a key that does not parse with this table's IPv6
    /// prefix, already idle, or starting more than one window in the future are ignored; at most
    /// `capacity` × windows records are read.
    public mutating func restore(_ records: [RateRecord], now: Double) {
        for r in records.prefix(capacity * max(windows.count + distinctWindows.count, 1)) {
            let range = ranges[r.kind.ordinal]
            guard r.bucketStart.isFinite, r.bucketStart <= now + Double(r.seconds),
                  let key = try? ClientKey(parsing: r.key, ipv6Prefix: ipv6Prefix) else { continue }
            if r.kind == .destinations {
                guard let j = range.first(where: { distinctWindows[$0].seconds == r.seconds }) else { continue }
                let d = DistinctCounter(seconds: r.seconds, cap: Self.distinctCap(distinctWindows[j].limit),
                                        bucketStart: r.bucketStart, current: r.current, previous: r.previous)
                guard !d.isIdle(now: now) else { continue }
                distinct[slot(for: key, now: now) * distinctWindows.count + j] = d
            } else {
                guard let j = range.first(where: { windows[$0].window.seconds == r.seconds }) else { continue }
                let c = SlidingWindowCounter(seconds: r.seconds, bucketStart: r.bucketStart, current: r.current, previous: r.previous)
                guard !c.isIdle(now: now) else { continue }
                counters[slot(for: key, now: now) * windows.count + j] = c
            }
        }
    }

    /// One above the limit is all "has it been reached" needs; a hand-built spec may hold any Int.
    private static func distinctCap(_ limit: Int) -> Int {
        limit < DistinctCounter.maxCap ? max(limit, 0) + 1 : DistinctCounter.maxCap
    }

    private func isIdle(_ s: Int, now: Double) -> Bool {
        let c = s * windows.count
        let d = s * distinctWindows.count
        return counters[c..<c + windows.count].allSatisfy { $0.isIdle(now: now) }
            && distinct[d..<d + distinctWindows.count].allSatisfy { $0.isIdle(now: now) }
    }

    /// The slot of `key`, taking a new one if it is not tracked: a free slot, a new one while below
    /// capacity, else an idle client found within `evictionSearch` slots, else the oldest client.
    private mutating func slot(for key: ClientKey, now: Double) -> Int {
        if let s = index[key] { return Int(s) }
        if index.count >= capacity {
            var victim = Int(oldest)
            for _ in 0..<min(Self.evictionSearch, keys.count) {
                let s = nextCursor()
                if keys[s] != nil, isIdle(s, now: now) {
                    victim = s
                    break
                }
            }
            release(victim)
        }
        let s: Int
        if let reused = free.popLast() {
            s = Int(reused)
        } else {
            s = keys.count
            keys.append(nil)
            older.append(-1)
            newer.append(-1)
            changed.append(false)
            counters += freshCounters
            distinct += freshDistinct
        }
        keys[s] = key
        index[key] = Int32(s)
        older[s] = newest
        newer[s] = -1
        if newest >= 0 { newer[Int(newest)] = Int32(s) } else { oldest = Int32(s) }
        newest = Int32(s)
        return s
    }

    private mutating func release(_ s: Int) {
        guard let key = keys[s] else { return }
        index[key] = nil
        keys[s] = nil
        changed[s] = false
        let (o, n) = (older[s], newer[s])
        if o >= 0 { newer[Int(o)] = n } else { oldest = n }
        if n >= 0 { older[Int(n)] = o } else { newest = o }
        counters.replaceSubrange(s * windows.count..<(s + 1) * windows.count, with: freshCounters)
        distinct.replaceSubrange(s * distinctWindows.count..<(s + 1) * distinctWindows.count, with: freshDistinct)
        free.append(Int32(s))
    }

    private mutating func nextCursor() -> Int {
        if cursor >= keys.count { cursor = 0 }
        defer { cursor += 1 }
        return cursor
    }
}
