/// Answers kept by the time their TTL allows, in front of the resolver's own cache: an answer found here
/// is given on the asking thread, without the round trip to the resolver's thread (three of them per
/// session with three DNSBL zones). Failures are never kept. Bounded; when full, expired answers go, and
/// if none has expired the new one is not kept.
public struct AnswerCache: Sendable {
    public struct Key: Hashable, Sendable {
        public var name: String
        public var type: DNSType

        public init(_ name: String, _ type: DNSType) {
            self.name = name.lowercased()
            self.type = type
        }
    }

    public let capacity: Int
    private var entries: [Key: (answer: DNSAnswer, expires: Double)] = [:]
    /// A full cache is swept at most once a second: a flood of new names must not make each insert a scan.
    private var lastSweep = -Double.infinity

    public init(capacity: Int) {
        self.capacity = max(0, capacity)
    }

    public var count: Int { entries.count }

    public mutating func answer(_ key: Key, now: Double) -> DNSAnswer? {
        guard let e = entries[key] else { return nil }
        guard now < e.expires else {
            entries[key] = nil
            return nil
        }
        return e.answer
    }

    /// Keeps `answer` for `ttl` seconds (nothing for 0 or less, or for a failure).
    public mutating func keep(_ answer: DNSAnswer, for key: Key, ttl: Int, now: Double) {
        if case .failure = answer { return }
        guard ttl > 0, capacity > 0 else { return }
        if entries[key] == nil, entries.count >= capacity {
            guard now - lastSweep >= 1 else { return }
            lastSweep = now
            entries = entries.filter { now < $0.value.expires }
            guard entries.count < capacity else { return }
        }
        entries[key] = (answer, now + Double(ttl))
    }
}
