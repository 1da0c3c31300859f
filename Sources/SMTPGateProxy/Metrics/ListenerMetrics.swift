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
        func labeled(_ f: MetricFamily) -> LabeledCounters { LabeledCounters(f, fixed: [name], registry: registry) }
        sessions = labeled(.sessions)
        refusals = labeled(.refusals)
        commandRefusals = labeled(.commandRefusals)
        transactions = labeled(.transactions)
        recipients = labeled(.recipients)
        limitHits = labeled(.limitHits)
        rateLimitHits = labeled(.rateLimitHits)
        policyWarnings = registry.counter(.policyWarnings, name)
        descriptorExhaustion = registry.counter(.descriptorExhaustion, name)
        bytesFromClient = registry.counter(.bytes, name, "from_client")
        bytesToClient = registry.counter(.bytes, name, "to_client")
    }
}
