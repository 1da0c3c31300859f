/// Counts live sessions, in total and per client address, against `max_connections` and `max_per_host`
/// (0 means no limit). Pure bookkeeping: the caller serialises access.
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

    public mutating func admit(host: String, maxConnections: Int, maxPerHost: Int) -> Decision {
        if maxConnections > 0, total >= maxConnections { return .tooManyConnections(limit: maxConnections) }
        let current = perHost[host] ?? 0
        if maxPerHost > 0, current >= maxPerHost { return .tooManyFromHost(limit: maxPerHost) }
        total += 1
        perHost[host] = current + 1
        return .admit
    }

    public mutating func release(host: String) {
        guard let current = perHost[host] else { return }
        total -= 1
        if current <= 1 { perHost[host] = nil } else { perHost[host] = current - 1 }
    }
}
