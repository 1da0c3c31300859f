import CoreMetrics
import SMTPGateCore
import SMTPGateRuntime

/// The counters of one SMTP listener, made when the listener is first bound and kept across reloads.
final class ListenerMetrics: Sendable {
    let sessions: LabeledCounters
    let refusals: LabeledCounters
    let commandRefusals: LabeledCounters
    let transactions: LabeledCounters
    let recipients: LabeledCounters
    let limitHits: LabeledCounters
    let rateLimitHits: LabeledCounters
    let policyWarnings: CoreMetrics.Counter
    let descriptorExhaustion: CoreMetrics.Counter
    let bytesFromClient: CoreMetrics.Counter
    let bytesToClient: CoreMetrics.Counter

    init(_ name: String, registry: MetricsRegistry) {
        func labeled(_ f: MetricFamily, known: [String] = []) -> LabeledCounters {
            LabeledCounters(f, fixed: [name], known: known, registry: registry)
        }
        let classes = ["2xx", "4xx", "5xx", "none"]
        sessions = labeled(.sessions, known: ["client", "server", "proxy"])
        refusals = labeled(.refusals)
        commandRefusals = labeled(.commandRefusals)
        transactions = labeled(.transactions, known: classes)
        recipients = labeled(.recipients, known: classes)
        limitHits = labeled(.limitHits)
        rateLimitHits = labeled(.rateLimitHits)
        policyWarnings = registry.counter(.policyWarnings, name)
        descriptorExhaustion = registry.counter(.descriptorExhaustion, name)
        bytesFromClient = registry.counter(.bytes, name, "from_client")
        bytesToClient = registry.counter(.bytes, name, "to_client")
    }
}
