import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import SMTPGateCore

/// Accepts client connections, applies admission, and starts a relay session for each. The configuration
/// is read per connection, so a reload applies to new sessions.
final class ProxyListener: @unchecked Sendable {
    let name: String
    private let currentConfig: () -> Config
    private let hostName: String
    private let events: EventLog
    private let registry: SessionRegistry

    init(name: String, config: @escaping () -> Config, hostName: String, events: EventLog, registry: SessionRegistry) {
        self.name = name
        self.currentConfig = config
        self.hostName = hostName
        self.events = events
        self.registry = registry
    }

    /// One listening socket per event loop (SO_REUSEPORT): the kernel spreads connections across them
    /// and each session stays on the loop that accepted it, with no hand-off between threads.
    func bind(group: EventLoopGroup, config: Config) throws -> [Channel] {
        var bound: [Channel] = []
        do {
            for loop in group.makeIterator() {
                bound.append(try bind(loop: loop, config: config))
            }
        } catch {
            bound.forEach { $0.close(promise: nil) }
            throw error
        }
        return bound
    }

    private func bind(loop: EventLoop, config: Config) throws -> Channel {
        try ServerBootstrap(group: loop)
            .serverChannelOption(.backlog, value: Int32(config.connectQueue))
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelOption(ChannelOptions.Types.SocketOption(level: NIOBSDSocket.OptionLevel(rawValue: SOL_SOCKET), name: NIOBSDSocket.Option(rawValue: SO_REUSEPORT)), value: 1)
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { [self] channel in
                accept(channel)
            }
            .bind(host: config.bindAddress.text, port: config.port)
            .wait()
    }

    private func accept(_ channel: Channel) -> EventLoopFuture<Void> {
        let config = currentConfig()
        let host = channel.remoteAddress?.ipAddress ?? "-"
        let id = registry.newID()
        guard let server = config.fixedServer,
              let destination = try? SocketAddress(ipAddress: server.text, port: config.fixedServerPort) else {
            return channel.close()
        }
        let settings = SessionSettings(config: config, hostName: hostName)
        switch registry.admit(host: host, config: config) {
        case .admit:
            break
        case .tooManyConnections(let limit):
            return refuse(channel, id: id, reason: "max_connections", limit: limit,
                          reply: ProxyReplies(proxyName: settings.proxyName).tooManyConnections(limit: limit))
        case .tooManyFromHost(let limit):
            return refuse(channel, id: id, reason: "max_per_host", limit: limit,
                          reply: ProxyReplies(proxyName: settings.proxyName).tooManyFromHost(limit: limit))
        }
        let env = SessionEnvironment(config: config, settings: settings, logPolicy: LogPolicy(config: config),
                                     events: events, registry: registry, listenerName: name)
        let session = RelaySession(id: id, client: channel, destination: destination, env: env)
        registry.add(session, host: host)
        do {
            try channel.pipeline.syncOperations.addHandler(RelaySideHandler(session: session, side: .client))
        } catch {
            return channel.eventLoop.makeFailedFuture(error)
        }
        session.start(destination: destination)
        return channel.eventLoop.makeSucceededVoidFuture()
    }

    private func refuse(_ channel: Channel, id: String, reason: String, limit: Int, reply: [UInt8]) -> EventLoopFuture<Void> {
        let ctx = SessionContext(
            id: id, listener: name,
            client: channel.remoteAddress.map(RelaySession.describe) ?? "-",
            local: channel.localAddress.map(RelaySession.describe) ?? "-", destination: "-")
        events.record(SessionLog.reject(ctx, reason: reason, limit: limit))
        channel.writeAndFlush(channel.allocator.buffer(bytes: reply)).whenComplete { _ in
            channel.close(promise: nil)
        }
        return channel.eventLoop.makeSucceededVoidFuture()
    }
}
