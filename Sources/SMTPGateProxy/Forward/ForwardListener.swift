import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import SMTPGateCore
import SMTPGateRuntime

/// Accepts the connections of one `[forward]` on each of its ports and starts a `ForwardSession` for
/// each. The section is read per connection, so a reload that keeps the sockets applies to new ones.
final class ForwardListener: @unchecked Sendable {
    let name: String
    private let section: () -> ForwardSection
    private let events: EventLog
    private let registry: SessionRegistry
    private let makeFinder: (Config, EventLoop) -> OriginFinder
    private let abuse: AbuseControl?
    private let metrics: ForwardMetrics?
    private let listenPorts: @Sendable () -> Set<Int>
    private let localAddresses = NIOLockedValueBox(LocalAddresses.current())

    init(name: String, section: @escaping () -> ForwardSection, events: EventLog, registry: SessionRegistry,
         listenPorts: @escaping @Sendable () -> Set<Int>,
         makeFinder: @escaping (Config, EventLoop) -> OriginFinder, abuse: AbuseControl?, metrics: ForwardMetrics? = nil) {
        self.metrics = metrics
        self.listenPorts = listenPorts
        self.name = name
        self.section = section
        self.events = events
        self.registry = registry
        self.makeFinder = makeFinder
        self.abuse = abuse
    }

    /// Interfaces come and go: the loop check uses the addresses read at the last reload.
    func refreshLocalAddresses() {
        localAddresses.withLockedValue { $0 = LocalAddresses.current() }
    }

    /// One socket per port and event loop (SO_REUSEPORT, as SMTP listeners do).
    func bind(group: EventLoopGroup, section: ForwardSection) throws -> [Channel] {
        var bound: [Channel] = []
        do {
            for port in section.ports.lower...section.ports.upper {
                for loop in group.makeIterator() {
                    bound.append(try bind(loop: loop, config: section.config, port: port))
                }
            }
        } catch {
            bound.forEach { $0.close(promise: nil) }
            throw error
        }
        return bound
    }

    private func bind(loop: EventLoop, config: Config, port: Int) throws -> Channel {
        try ListeningSocket.bootstrap(loop: loop, config: config, listener: name, events: events)
            .childChannelInitializer { [self] channel in accept(channel) }
            .bind(host: config.bindAddress.text, port: port)
            .wait()
    }

    private func accept(_ channel: Channel) -> EventLoopFuture<Void> {
        if DescriptorReserve.refuses(channel) {
            // Counted in the listener's rate-limited accept_failed line.
            metrics?.descriptorExhaustion.increment()
            channel.close(promise: nil)
            return channel.eventLoop.makeSucceededVoidFuture()
        }
        let current = section()
        let config = current.config
        let finder: OriginFinder
        if config.mode?.isFixed ?? true {
            let port = channel.localAddress?.port.map(current.targetPort(for:)) ?? current.targetPorts.lower
            finder = FixedOrigin(server: config.fixedServer, port: port)
        } else {
            finder = makeFinder(config, channel.eventLoop)
        }
        let (local, ports) = (localAddresses.withLockedValue { $0 }, listenPorts())
        let env = ForwardEnvironment(config: config, listenerName: name, registry: registry, finder: finder,
                                     abuse: abuse, isLoop: { local.isLoop($0, listenPorts: ports) },
                                     ended: { [events, metrics, tag = config.syslogName] connection in
                                         metrics?.ended(connection)
                                         var record = ForwardLog.connection(connection)
                                         record.tag = tag
                                         events.record(record)
                                     })
        let session = ForwardSession(id: registry.newID(), client: channel, env: env)
        do {
            try channel.pipeline.syncOperations.addHandler(RelaySideHandler(session: session, side: .client))
        } catch {
            return channel.eventLoop.makeFailedFuture(error)
        }
        // Started once the channel is registered and active: a refusal decided at once (rules, limits) closes
        // it, and only an active channel's close reaches the session as channelInactive.
        channel.eventLoop.execute { session.start() }
        return channel.eventLoop.makeSucceededVoidFuture()
    }
}
