import NIOConcurrencyHelpers
import SMTPGateCore

/// The daemon's policy-service clients, one per distinct service setting, made when first asked for and
/// kept until the daemon stops (a setting a reload dropped leaves idle connections, which max_idle closes).
final class PolicyServiceClients: Sendable {
    private let clients = NIOLockedValueBox<[String: PolicyServiceClient]>([:])
    /// Distinct settings at most; past it the last made is reused rather than a connection pool leaked.
    static let maxClients = 64

    func client(for settings: PolicyServiceSettings) -> PolicyServiceClient {
        let key = settings.description
        return clients.withLockedValue { all in
            if let c = all[key] { return c }
            let c = PolicyServiceClient(settings: settings)
            if all.count < Self.maxClients { all[key] = c }
            return c
        }
    }

    func shutdown() {
        for c in clients.withLockedValue({ $0.values }) { c.shutdown() }
    }
}
