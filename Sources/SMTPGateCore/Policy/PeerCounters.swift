/// What the other proxies of a pool counted for each client, as they last wrote it to the shared store:
/// per client, per window, per proxy, a copy of that proxy's `SlidingWindowCounter`. A proxy decides on
/// its own count plus these, so a limit holds across the pool (late by the store's sharing delay).
///
/// Each row replaces the copy it names, so reading a row twice or out of turn changes nothing. Copies
/// age by the same rule as the counters they copy (two fixed buckets aligned to the epoch), so a proxy
/// that stops writing fades out with its windows. Distinct destinations are not summed across proxies
/// (two proxies would each count a destination both use); the caller does not give them here.
///
/// Bounded: at most `capacity` clients and `maxSources` proxies; rows past either bound are ignored,
/// after idle clients have been dropped to make room. Memory per client: its key in the index (40
/// bytes plus the index's spare room), an array (32 bytes of header) and 32 bytes per copied window.
/// Pure bookkeeping: the caller serialises access.
public struct PeerCounters: Sendable {
    struct Copy: Sendable {
        let source: UInt16
        let kind: RateKind
        var counter: SlidingWindowCounter
    }

    public let capacity: Int
    public static let maxSources = 4096
    /// Windows kept per client: each proxy's windows for each summed kind, bounded against a hostile store.
    static let maxCopies = 256
    /// How many clients a full table looks at for an idle one before it ignores a new client's row.
    static let roomSearch = 64

    private var clients: [ClientKey: [Copy]] = [:]
    private var sources: [String: UInt16] = [:]
    /// Clients in the order they arrived, for `sweep`; a key dropped meanwhile is skipped.
    private var order: [ClientKey] = []
    private var head = 0

    public init(capacity: Int) {
        self.capacity = max(capacity, 1)
    }

    /// Clients with a copy now.
    public var count: Int { clients.count }
    public var isEmpty: Bool { clients.isEmpty }

    /// Takes `record` as what proxy `source` counts for its client now. Destinations, records already
    /// idle or starting more than one window in the future, and keys that do not parse are ignored.
    public mutating func absorb(_ record: RateRecord, source: String, ipv6Prefix: Int, now: Double) {
        guard record.kind != .destinations, record.bucketStart.isFinite, record.bucketStart <= now + Double(record.seconds),
              let key = try? ClientKey(parsing: record.key, ipv6Prefix: ipv6Prefix) else { return }
        let counter = SlidingWindowCounter(seconds: record.seconds, bucketStart: record.bucketStart,
                                           current: record.current, previous: record.previous)
        if clients[key] != nil {
            guard let id = sourceID(source) else { return }
            if let i = clients[key]!.firstIndex(where: { $0.source == id && $0.kind == record.kind && $0.counter.seconds == counter.seconds }) {
                clients[key]![i].counter = counter
            } else if clients[key]!.count < Self.maxCopies {
                clients[key]!.append(Copy(source: id, kind: record.kind, counter: counter))
            }
            return
        }
        guard !counter.isIdle(now: now) else { return }
        if clients.count >= capacity { _ = sweep(now: now, limit: Self.roomSearch) }
        guard clients.count < capacity, let id = sourceID(source) else { return }
        clients[key] = [Copy(source: id, kind: record.kind, counter: counter)]
        order.append(key)
    }

    /// The other proxies' estimate for this client's `seconds`-long window of `kind`.
    public func estimate(_ key: ClientKey, _ kind: RateKind, seconds: Int, now: Double) -> Double {
        guard let copies = clients[key] else { return 0 }
        var sum = 0.0
        for c in copies where c.kind == kind && c.counter.seconds == seconds { sum += c.counter.estimate(now: now) }
        return sum
    }

    /// Drops clients whose every copy is idle, looking at no more than `limit` of them (oldest first,
    /// the ones still counting go to the back); returns how many were dropped.
    public mutating func sweep(now: Double, limit: Int) -> Int {
        var dropped = 0
        var looked = 0
        while looked < limit, head < order.count {
            let key = order[head]
            head += 1
            looked += 1
            guard let copies = clients[key] else { continue }
            if copies.allSatisfy({ $0.counter.isIdle(now: now) }) {
                clients[key] = nil
                dropped += 1
            } else {
                order.append(key)
            }
        }
        // The consumed front is given back once it is most of the array.
        if head > 1024, head * 2 > order.count {
            order.removeFirst(head)
            head = 0
        }
        return dropped
    }

    private mutating func sourceID(_ source: String) -> UInt16? {
        if let id = sources[source] { return id }
        guard sources.count < Self.maxSources else { return nil }
        let id = UInt16(sources.count)
        sources[source] = id
        return id
    }
}
