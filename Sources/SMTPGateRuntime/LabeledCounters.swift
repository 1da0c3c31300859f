import CoreMetrics
import NIOConcurrencyHelpers
import SMTPGateCore

/// One family's counters with the first labels fixed (the listener) and the others varying. The values
/// every session meets (reply classes, who closed) are made up front and read without a lock; others are
/// made on first use and kept, so a hot path never pays the registry's lock.
public final class LabeledCounters: Sendable {
    private let family: MetricFamily
    private let fixed: [String]
    private let registry: MetricsRegistry
    private let known: [String: CoreMetrics.Counter]
    private let made = NIOLockedValueBox<[String: CoreMetrics.Counter]>([:])

    public init(_ family: MetricFamily, fixed: [String], known: [String] = [], registry: MetricsRegistry) {
        self.family = family
        self.fixed = fixed
        self.registry = registry
        var k: [String: CoreMetrics.Counter] = [:]
        for v in known { k[v] = registry.counter(family, fixed + [v]) }
        self.known = k
    }

    public func increment(_ values: String..., by amount: Int = 1) {
        let key = values.count == 1 ? values[0] : values.joined(separator: "\u{0}")
        if let c = known[key] {
            c.increment(by: Int64(amount))
            return
        }
        let counter = made.withLockedValue { made -> CoreMetrics.Counter in
            if let c = made[key] { return c }
            let c = registry.counter(family, fixed + values)
            made[key] = c
            return c
        }
        counter.increment(by: Int64(amount))
    }
}
