import NIOConcurrencyHelpers
import SMTPGateCore

/// The daemon's policy-service clients, one per distinct service setting, made when first asked for. A
/// reload keeps the clients its configuration still names and shuts the others down (a query still on
/// one of them fails, and its service's default_action applies).
final class PolicyServiceClients: Sendable {
    private let clients = NIOLockedValueBox<[String: PolicyServiceClient]>([:])
    private let observer: ServiceObserver?

    init(observer: ServiceObserver? = nil) {
        self.observer = observer
    }

    func client(for settings: PolicyServiceSettings) -> PolicyServiceClient {
        let key = settings.description
        return clients.withLockedValue { all in
            if let c = all[key] { return c }
            let c = PolicyServiceClient(settings: settings, observer: observer)
            all[key] = c
            return c
        }
    }

    /// After a reload: only the services `config`'s lists name stay.
    func keep(only configs: [Config]) {
        var named: Set<String> = []
        for config in configs {
            for list in config.restrictions.values {
                for case .checkPolicyService(let s) in list { named.insert(s.description) }
            }
        }
        let dropped = clients.withLockedValue { all -> [PolicyServiceClient] in
            let gone = all.filter { !named.contains($0.key) }
            for key in gone.keys { all[key] = nil }
            return Array(gone.values)
        }
        for c in dropped { c.shutdown() }
    }

    func shutdown() {
        for c in clients.withLockedValue({ $0.values }) { c.shutdown() }
    }
}
