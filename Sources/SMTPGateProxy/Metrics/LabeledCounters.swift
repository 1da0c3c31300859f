import CoreMetrics
import NIOConcurrencyHelpers
import SMTPGateCore
import SMTPGateRuntime

/// One family's counters with the first labels fixed (the listener) and the others varying: made on first use, then
/// kept, so a hot path pays one lock and one lookup, never the registry's.
final class LabeledCounters: Sendable {
    private let family: MetricFamily
    private let fixed: [String]
    private let registry: MetricsRegistry
    private let made = NIOLockedValueBox<[String: CoreMetrics.Counter]>([:])

    init(_ family: MetricFamily, fixed: [String], registry: MetricsRegistry) {
        self.family = family
        self.fixed = fixed
        self.registry = registry
    }

    func increment(_ values: String..., by amount: Int = 1) {
        let key = values.count == 1 ? values[0] : values.joined(separator: "\u{0}")
        let counter = made.withLockedValue { made -> CoreMetrics.Counter in
            if let c = made[key] { return c }
            let c = registry.counter(family, fixed + values)
            made[key] = c
            return c
        }
        counter.increment(by: Int64(amount))
    }
}
