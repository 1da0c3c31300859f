/// Counts live sessions, in total and per client address, against `max_connections` and `max_per_host`
/// (0 means no limit). Two steps, because the real client of a NAT'd connection is known only after the
/// lookup: the total is checked when a connection is accepted, the host once the client is known.
/// Pure bookkeeping: the caller serialises access.
public struct Admission: Sendable {
    public enum Decision: Sendable, Equatable {
        case admit
        case tooManyConnections(limit: Int)
        case tooManyFromHost(limit: Int)
    }

    public private(set) var total = 0
    private var perHost: [String: Int] = [:]

    public init() {}

    public func count(host: String) -> Int { perHost[host] ?? 0 }

    public mutating func admitConnection(maxConnections: Int) -> Decision {
        if maxConnections > 0, total >= maxConnections { return .tooManyConnections(limit: maxConnections) }
        total += 1
        return .admit
    }

    public mutating func admitHost(_ host: String, maxPerHost: Int) -> Decision {
        let current = perHost[host] ?? 0
        if maxPerHost > 0, current >= maxPerHost { return .tooManyFromHost(limit: maxPerHost) }
        perHost[host] = current + 1
        return .admit
    }

    public mutating func releaseConnection() {
        total = max(0, total - 1)
    }

    public mutating func releaseHost(_ host: String) {
        guard let current = perHost[host] else { return }
        if current <= 1 { perHost[host] = nil } else { perHost[host] = current - 1 }
    }
}
