import CoreMetrics
import SMTPGateCore
import SMTPGateRuntime

/// The helper's metrics for `--admin-listen`: the same events `HelperCounters` counts for the `counters`
/// log line, counted as they happen.
public final class HelperMetrics: Sendable {
    public let registry = MetricsRegistry()
    private let found: CoreMetrics.Counter
    private let notFound: CoreMetrics.Counter
    private let lookupError: CoreMetrics.Counter
    private let lookupTime: CoreMetrics.Timer
    private let drops: LabeledCounters

    public init(version: String) {
        found = registry.counter(.helperQueries, "found")
        notFound = registry.counter(.helperQueries, "not_found")
        lookupError = registry.counter(.helperQueries, "lookup_error")
        lookupTime = registry.timer(.helperLookupDuration)
        drops = LabeledCounters(.helperDrops, fixed: [], registry: registry)
        registry.gauge(.buildInfo, version).set(1)
    }

    func looked(_ result: LookupResult, microseconds: UInt64) {
        switch result {
        case .found: found.increment()
        case .notFound: notFound.increment()
        case .error: lookupError.increment()
        }
        lookupTime.recordNanoseconds(Int64(clamping: microseconds.multipliedReportingOverflow(by: 1000).overflow ? UInt64.max : microseconds * 1000))
    }

    /// `reason` is one of the helper's drop reasons (a closed set), never text from a query.
    func dropped(_ reason: String) {
        drops.increment(reason)
    }
}
