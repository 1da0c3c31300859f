import CoreMetrics
import SMTPGateCore
import SMTPGateRuntime

/// The counters of one `[forward]` listener: its connections by rinetd's result name and the bytes they
/// moved, in the same `smtpgate_bytes_total` family as SMTP sessions' (the listener label tells them apart).
final class ForwardMetrics: Sendable {
    let results: LabeledCounters
    let bytesFromClient: CoreMetrics.Counter
    let bytesToClient: CoreMetrics.Counter
    let descriptorExhaustion: CoreMetrics.Counter

    init(_ name: String, registry: MetricsRegistry) {
        results = LabeledCounters(.forwards, fixed: [name], known: ForwardLog.Result.allCases.map(\.rawValue), registry: registry)
        bytesFromClient = registry.counter(.bytes, name, "from_client")
        bytesToClient = registry.counter(.bytes, name, "to_client")
        descriptorExhaustion = registry.counter(.descriptorExhaustion, name)
    }

    func ended(_ connection: ForwardLog.Connection) {
        results.increment(connection.result.rawValue)
        bytesFromClient.increment(by: Int64(connection.bytesIn))
        bytesToClient.increment(by: Int64(connection.bytesOut))
    }
}
