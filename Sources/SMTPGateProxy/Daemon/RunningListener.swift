import NIOConcurrencyHelpers
import NIOCore
import SMTPGateCore

/// A listener or forward as the daemon runs it: its options (a reload that keeps its sockets swaps them,
/// and new sessions read them), its sockets and its sessions.
final class RunningListener: @unchecked Sendable {
    let name: String
    let sockets: ListenerEnd
    let config: NIOLockedValueBox<Config>
    let registry: SessionRegistry
    /// A forward's section (its port ranges and rules with its options), swapped with `config`.
    let forward: NIOLockedValueBox<ForwardSection>?
    /// Re-reads the addresses the loop check knows (SMTP listeners).
    let refresh: () -> Void
    private(set) var servers: [Channel] = []

    init(name: String, sockets: ListenerEnd, config: NIOLockedValueBox<Config>, registry: SessionRegistry,
         forward: NIOLockedValueBox<ForwardSection>? = nil, refresh: @escaping () -> Void = {}) {
        self.forward = forward
        self.name = name
        self.sockets = sockets
        self.config = config
        self.registry = registry
        self.refresh = refresh
    }

    /// A reload that keeps the sockets: new sessions get these options.
    func update(_ config: Config, forward section: ForwardSection? = nil) {
        self.config.withLockedValue { $0 = config }
        if let section { forward?.withLockedValue { $0 = section } }
    }

    func bound(_ channels: [Channel]) {
        servers = channels
    }

    /// Stops accepting; open sessions go on.
    func close() {
        servers.forEach { $0.close(promise: nil) }
        servers = []
    }
}
