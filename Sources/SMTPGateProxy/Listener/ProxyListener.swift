import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import SMTPGateCore
import SMTPGateRuntime

/// Accepts client connections, applies admission, and starts a relay session for each. The configuration
/// is read per connection, so a reload applies to new sessions.
final class ProxyListener: @unchecked Sendable {
    let name: String
    private let currentConfig: () -> Config
    private let hostName: String
    private let events: EventLog
    private let registry: SessionRegistry
    private let makeFinder: (Config, EventLoop) -> OriginFinder
    private let makeExtras: (Config) -> SessionExtras
    private let abuse: ListenerAbuse?
    private let loadAverage = LoadAverage()
    private let localAddresses = NIOLockedValueBox(LocalAddresses.current())
    /// Every port the daemon listens on: a destination among them on a local address is a loop.
    private let listenPorts: @Sendable () -> Set<Int>
    /// Counted only where someone can read them: without admin_listen at start a session pays nothing.
    private let metrics: (daemon: ProxyMetrics, listener: ListenerMetrics)?

    init(name: String, config: @escaping () -> Config, hostName: String, events: EventLog, registry: SessionRegistry,
         listenPorts: @escaping @Sendable () -> Set<Int>,
         makeFinder: @escaping (Config, EventLoop) -> OriginFinder,
         makeExtras: @escaping (Config) -> SessionExtras, abuse: AbuseControl?, metrics: ProxyMetrics?) {
        self.metrics = metrics.map { ($0, $0.listener(name)) }
        self.listenPorts = listenPorts
        self.abuse = abuse.map { ListenerAbuse(control: $0, listener: name) }
        self.makeExtras = makeExtras
        self.name = name
        self.currentConfig = config
        self.hostName = hostName
        self.events = events
        self.registry = registry
        self.makeFinder = makeFinder
    }

    /// Interfaces come and go: the loop check uses the addresses read at the last reload.
    func refreshLocalAddresses() {
        localAddresses.withLockedValue { $0 = LocalAddresses.current() }
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
        try ListeningSocket.bootstrap(loop: loop, config: config, listener: name, events: events)
            .childChannelInitializer { [self] channel in
                accept(channel)
            }
            .bind(host: config.bindAddress.text, port: config.port)
            .wait()
    }

    private func accept(_ channel: Channel) -> EventLoopFuture<Void> {
        let config = currentConfig()
        if DescriptorReserve.refuses(channel) {
            // Counted in the listener's rate-limited accept_failed line, not logged one by one.
            metrics?.listener.descriptorExhaustion.increment()
            return send(ProxyReplies(proxyName: config.resolvedProxyName(hostName: hostName), texts: config.replyTexts).tooManyOpenFiles(),
                        andClose: channel)
        }
        var settings = SessionSettings(config: config, hostName: hostName)
        settings.decideAtEndOfData = abuse != nil
        let extras = makeExtras(config)
        let (scanning, actions) = (extras.scanning, extras.actions)
        var subscribers: [any ProxyEventSubscriber] = [LogSubscriber(log: events, policy: LogPolicy(config: config))]
        if let metrics { subscribers.append(MetricsSubscriber(daemon: metrics.daemon, listener: metrics.listener)) }
        if let abuse { subscribers.append(AbuseSubscriber(abuse: abuse, locking: config.policyMode == .enforce)) }
        if let actions {
            subscribers.append(ActionSubscriber(runner: actions, locking: abuse?.lockSettings ?? LockSettings(causes: [], duration: 0)))
        }
        let bus = ProxyEventBus(subscribers)
        var admission = AdmissionPipeline<AdmissionRequest>(checks: admissionChecks(config, dnsbl: extras.dnsbl, maps: extras.maps))
        if config.policyMode == .warn {
            admission.warn = { request, refusal in bus.publish(.warned(request.session.reportContext, refusal)) }
        }
        let env = SessionEnvironment(
            config: config, settings: settings, bus: bus,
            registry: registry, listenerName: name, finder: makeFinder(config, channel.eventLoop),
            admission: admission, abuse: abuse, scanning: scanning, resolver: extras.resolver, maps: extras.maps,
            policyServices: extras.policyServices)
        let session = RelaySession(id: registry.newID(), client: channel, env: env)
        do {
            try channel.pipeline.syncOperations.addHandler(RelaySideHandler(session: session, side: .client))
        } catch {
            return channel.eventLoop.makeFailedFuture(error)
        }
        // The client is not read until the session's upstream is open, so nothing is lost while checks wait.
        var request = AdmissionRequest(session: session, origin: nil)
        // In split mode the peer is the router asking for its customers: only the helper's answer names the client.
        if let abuse, config.mode != .remoteUDP, let bytes = channel.remoteAddress?.ipBytes {
            request.peerKeys = abuse.keys(address: bytes, ident: nil)
        }
        admission.run(.accepted, request) { [self] refusal in
            guard let refusal else {
                session.start()
                return
            }
            session.abandon()
            _ = refuse(channel, id: session.id, refusal, bus: bus, replies: ProxyReplies(proxyName: settings.proxyName, texts: settings.replyTexts))
        }
        return channel.eventLoop.makeSucceededVoidFuture()
    }

    /// In order: the cheap global limits, then what needs the client, then counting (a refused connection is
    /// not counted against a rate).
    private func admissionChecks(_ config: Config, dnsbl: DNSBLCheck?, maps: AccessMapSet) -> [AdmissionCheck<AdmissionRequest>] {
        var checks: [AdmissionCheck<AdmissionRequest>] = [.maxConnections(registry, limit: config.maxConnections)]
        if !config.destinationRestrictions.isEmpty {
            checks.append(.destination(DestinationPolicy(list: config.destinationRestrictions, maps: maps)))
        }
        if config.maxLoad > 0 { checks.append(.maxLoad(config.maxLoad, loadAverage)) }
        if let abuse { checks.append(.lockAtAccept(abuse)) }
        checks.append(.loop(localAddresses.withLockedValue { $0 }, listenPorts: listenPorts()))
        if let abuse { checks.append(.lock(abuse)) }
        checks += [.maxPerHost(registry, limit: config.maxPerHost), .maxPerIdent(registry, limit: config.maxPerIdent)]
        if let abuse { checks.append(.connectionRates(abuse)) }
        if let dnsbl { checks.append(.dnsbl(dnsbl, deferToMail: config.authSkip.contains(.dnsbl))) }
        return checks
    }

    /// Refused at accept: one log line and the reply; no session began, so there is no `close` line.
    private func refuse(_ channel: Channel, id: String, _ refusal: Refusal, bus: ProxyEventBus,
                        replies: ProxyReplies) -> EventLoopFuture<Void> {
        let ctx = SessionContext(
            id: id, listener: name,
            client: channel.remoteAddress.map(RelaySession.describe) ?? "-",
            local: channel.localAddress.map(RelaySession.describe) ?? "-", destination: "-")
        bus.publish(.refused(ctx, refusal))
        return send(replies.refusal(refusal), andClose: channel)
    }

    /// The one reply a connection refused on accept gets.
    private func send(_ reply: [UInt8], andClose channel: Channel) -> EventLoopFuture<Void> {
        channel.writeAndFlush(channel.allocator.buffer(bytes: reply)).whenComplete { _ in
            channel.close(promise: nil)
        }
        return channel.eventLoop.makeSucceededVoidFuture()
    }
}
