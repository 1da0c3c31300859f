import CoreMetrics
import Prometheus
import SMTPGateCore

/// One process's metrics: swift-metrics handles over a swift-prometheus registry of its own (not the
/// global one, so each daemon a test starts counts apart). Every series is one of `MetricFamily`'s, with
/// its help text; making a handle takes the registry's lock, so callers make them once and keep them.
public final class MetricsRegistry: Sendable {
    private let registry = PrometheusCollectorRegistry()

    public init() {}

    public func counter(_ family: MetricFamily, _ values: String...) -> CoreMetrics.Counter {
        counter(family, values)
    }

    public func counter(_ family: MetricFamily, _ values: [String]) -> CoreMetrics.Counter {
        precondition(family.kind == .counter)
        let labels = Self.labels(family, values)
        return CoreMetrics.Counter(label: family.name, dimensions: labels,
                                   handler: registry.makeCounter(descriptor: Self.descriptor(family), labels: labels))
    }

    public func gauge(_ family: MetricFamily, _ values: String...) -> CoreMetrics.Meter {
        precondition(family.kind == .gauge)
        let labels = Self.labels(family, values)
        return CoreMetrics.Meter(label: family.name, dimensions: labels,
                                 handler: registry.makeGauge(descriptor: Self.descriptor(family), labels: labels))
    }

    public func timer(_ family: MetricFamily, _ values: String...) -> CoreMetrics.Timer {
        precondition(family.kind == .histogram)
        let labels = Self.labels(family, values)
        let buckets = family.buckets.map { Duration.nanoseconds(Int64(($0 * 1e9).rounded())) }
        let histogram = registry.makeDurationHistogram(descriptor: Self.descriptor(family), labels: labels, buckets: buckets)
        return CoreMetrics.Timer(label: family.name, dimensions: labels, handler: histogram)
    }

    /// The Prometheus text exposition format (version 0.0.4).
    public func render() -> [UInt8] {
        var out: [UInt8] = []
        registry.emit(into: &out)
        return out
    }

    private static func descriptor(_ family: MetricFamily) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: family.name, unitName: "", helpText: family.help)
    }

    private static func labels(_ family: MetricFamily, _ values: [String]) -> [(String, String)] {
        precondition(values.count == family.labels.count, "\(family.name) takes \(family.labels)")
        return Array(zip(family.labels, values))
    }
}

extension CoreMetrics.Timer {
    public func record(seconds: Double) {
        recordNanoseconds(Int64((max(0, seconds) * 1e9).rounded()))
    }
}
