import NIOConcurrencyHelpers
import SMTPGateCore

/// Everything the helper counts, behind one lock. `rejected` is keyed by drop reason.
public final class HelperCounters: @unchecked Sendable {
    public struct Snapshot: Sendable, Equatable {
        /// Queries that passed every check and were looked up.
        public var queries: UInt64 = 0
        public var found: UInt64 = 0
        public var notFound: UInt64 = 0
        /// Lookups that failed (netlink error, permission); answered NOTFOUND.
        public var lookupErrors: UInt64 = 0
        public var rejected: [String: UInt64] = [:]
        public var latency = LatencyHistogram()

        /// The `counters` log line's fields, in a fixed order (reasons sorted).
        public var fields: [(String, LogRecord.Value)] {
            var f: [(String, LogRecord.Value)] = [
                ("queries", .int(Int(queries))), ("found", .int(Int(found))),
                ("not_found", .int(Int(notFound))), ("lookup_error", .int(Int(lookupErrors))),
            ]
            for reason in rejected.keys.sorted() {
                f.append(("rejected_\(reason)", .int(Int(rejected[reason]!))))
            }
            f += [
                ("lookup_count", .int(Int(latency.count))), ("lookup_mean_us", .int(Int(latency.mean))),
                ("lookup_p50_us", .int(Int(latency.percentile(0.5)))),
                ("lookup_p99_us", .int(Int(latency.percentile(0.99)))),
                ("lookup_max_us", .int(Int(latency.max))),
            ]
            return f
        }
    }

    private let state = NIOLockedValueBox(Snapshot())
    private let metrics: HelperMetrics?

    public init(metrics: HelperMetrics? = nil) {
        self.metrics = metrics
    }

    public func rejected(_ reason: String) {
        state.withLockedValue { $0.rejected[reason, default: 0] += 1 }
        metrics?.dropped(reason)
    }

    public func looked(_ result: LookupResult, microseconds: UInt64) {
        metrics?.looked(result, microseconds: microseconds)
        state.withLockedValue { s in
            s.queries += 1
            s.latency.record(microseconds: microseconds)
            switch result {
            case .found: s.found += 1
            case .notFound: s.notFound += 1
            case .error: s.lookupErrors += 1
            }
        }
    }

    public var snapshot: Snapshot { state.withLockedValue { $0 } }
}

/// At most one log line per drop reason per `interval` seconds: the first drop is logged at once, later
/// ones are counted and reported with the next line (`count` = drops since the last line, this one
/// included). `due` reports counts still held back once their interval has passed, so a burst that
/// stops is still accounted for. Pure: the caller supplies the clock.
public struct DropLogLimiter: Sendable {
    public let interval: Double
    private var last: [String: Double] = [:]
    private var pending: [String: Int] = [:]

    public init(interval: Double = 10) {
        self.interval = interval
    }

    /// The count to log now, or nil to stay quiet.
    public mutating func note(_ reason: String, now: Double) -> Int? {
        pending[reason, default: 0] += 1
        if let t = last[reason], now - t < interval { return nil }
        last[reason] = now
        return pending.removeValue(forKey: reason)
    }

    /// Held-back counts whose interval has passed, sorted by reason.
    public mutating func due(now: Double) -> [(reason: String, count: Int)] {
        var out: [(String, Int)] = []
        for reason in pending.keys.sorted() {
            if let t = last[reason], now - t < interval { continue }
            last[reason] = now
            out.append((reason, pending.removeValue(forKey: reason)!))
        }
        return out
    }

    /// Everything held back, regardless of time (at stop).
    public mutating func drain() -> [(reason: String, count: Int)] {
        let out = pending.keys.sorted().map { ($0, pending[$0]!) }
        pending.removeAll()
        return out
    }
}
