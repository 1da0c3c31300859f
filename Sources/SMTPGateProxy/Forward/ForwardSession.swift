import NIOCore
import NIOPosix
import SMTPGateCore

/// What a forwarded connection needs from its listener, fixed when it opens (a reload applies to new ones).
struct ForwardEnvironment {
    let config: Config
    let listenerName: String
    let registry: SessionRegistry
    let finder: OriginFinder
    let abuse: AbuseControl?
    /// Whether a destination is this proxy's own listening end (a loop).
    let isLoop: (SocketAddress) -> Bool
    /// Logs the connection's line (and counts it) as it ends.
    let ended: @Sendable (ForwardLog.Connection) -> Void
    /// Opens the upstream with the session's side handler in its pipeline (`ForwardSession.dial` but in tests).
    var dial: (Origin, ForwardSession) -> EventLoopFuture<Channel> = ForwardSession.dial
}

/// One plain TCP connection of a `[forward]`: the real client is learnt and checked (rules, limits,
/// locks), then bytes go both ways untouched through the relay's side handlers, with backpressure and
/// half-close; one log line when it ends.
final class ForwardSession: RegisteredSession, RelayEnds {
    let id: String
    let client: Channel
    private var server: Channel?
    private let env: ForwardEnvironment
    private var line: ForwardLog.Connection
    /// On the loop's clock, so an embedded loop's virtual time drives the timeout in tests.
    private let started: NIODeadline
    private var lastActivity: NIODeadline
    private var timer: Scheduled<Void>?
    private var clientEOF = false
    private var serverEOF = false
    private var finished = false
    /// Set by the first end to close; gives the result unless something else ended the connection.
    private var result: ForwardLog.Result?
    var pendingClientRead: (() -> Void)?
    var pendingServerRead: (() -> Void)?

    init(id: String, client: Channel, env: ForwardEnvironment) {
        self.id = id
        self.client = client
        self.env = env
        started = client.eventLoop.now
        lastActivity = started
        line = ForwardLog.Connection(session: id, listener: env.listenerName,
                                     client: client.remoteAddress.map(RelaySession.describe) ?? "-", destination: "-")
    }

    // MARK: - Start

    func start() {
        guard case .admit = env.registry.admit(self, maxConnections: env.config.maxConnections) else {
            return refuse(.tooManyConnections, registered: false)
        }
        armTimer()
        env.finder.find(client).whenComplete { [self] found in
            guard !finished else { return }
            switch found {
            case .failure(let error):
                line.error = LogEscape.escape((error as? LookupError)?.reason ?? "\(error)")
                refuse(.lookupFailed)
            case .success(let origin):
                admit(origin)
            }
        }
    }

    private func admit(_ origin: Origin) {
        line.client = RelaySession.describe(origin.client)
        line.natSource = origin.natSource.map(RelaySession.describe)
        line.destination = RelaySession.describe(origin.destination)
        let ip = origin.client.normalisedIP ?? "-"
        if env.isLoop(origin.destination) { return refuse(.loop) }
        switch env.config.forwardRules.admits(ip) {
        case .allowed:
            break
        case .notAllowed(let global):
            line.global = global
            return refuse(.notAllowed)
        case .denied(let pattern, let global):
            line.pattern = pattern.text
            line.global = global
            return refuse(.denied)
        }
        if case .tooManyFromHost = env.registry.admitHost(self, host: ip, maxPerHost: env.config.maxPerHost) {
            return refuse(.tooManyFromHost)
        }
        if let abuse = env.abuse, let bytes = AddressBytes.parse(ip),
           let key = abuse.keys(address: bytes, ident: origin.ident)?.lock, let lock = abuse.activeLock(key) {
            line.error = LogEscape.escape(lock.reason)
            return refuse(.locked)
        }
        connect(origin)
    }

    /// The upstream connection, bound as `outgoing_addr`/`transparent_source` say.
    static func dial(_ origin: Origin, for session: ForwardSession) -> EventLoopFuture<Channel> {
        let config = session.env.config
        var bootstrap = ClientBootstrap(group: session.client.eventLoop)
            .channelOption(.allowRemoteHalfClosure, value: true)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .connectTimeout(.nanoseconds(Int64(config.timeoutConnect * 1e9)))
            .channelInitializer { ch in
                ch.eventLoop.makeCompletedFuture {
                    try ch.pipeline.syncOperations.addHandler(RelaySideHandler(session: session, side: .server))
                }
            }
        if config.transparentSource {
            bootstrap = bootstrap.channelOption(Transparent.option(for: origin.client), value: 1)
                .bind(to: Transparent.anyPort(origin.client))
        } else if let out = config.outgoingAddr, let local = try? SocketAddress(ipAddress: out.text, port: 0) {
            bootstrap = bootstrap.bind(to: local)
        }
        return bootstrap.connect(to: origin.destination)
    }

    private func connect(_ origin: Origin) {
        let config = env.config
        env.dial(origin, self).whenComplete { [self] connected in
            switch connected {
            case .success(let ch):
                guard !finished else {
                    ch.close(promise: nil)
                    return
                }
                server = ch
                if config.proxyProtocol, let header = ProxyHeader.make(client: origin.client, local: client.localAddress) {
                    ch.writeAndFlush(ch.allocator.buffer(bytes: header), promise: nil)
                }
                serverWritabilityChanged()
            case .failure(let error):
                guard !finished else { return }
                line.error = LogEscape.escape(RelaySession.reason(error))
                refuse(.connectFailed)
            }
        }
    }

    /// Ends a connection that was never relayed: no byte reaches either side.
    private func refuse(_ why: ForwardLog.Result, registered: Bool = true) {
        result = why
        // A channel closed before it became active fires no channelInactive: the close itself ends the session.
        client.close().whenComplete { [self] _ in if registered { finish() } }
        if !registered {
            finished = true
            env.ended(totals())
        }
    }

    // MARK: - Flow control

    var clientMayRead: Bool { !finished && (server?.isWritable ?? false) }
    var serverMayRead: Bool { !finished && client.isWritable }

    func clientWritabilityChanged() {
        if serverMayRead, let r = pendingServerRead {
            pendingServerRead = nil
            r()
        }
    }

    func serverWritabilityChanged() {
        if clientMayRead, let r = pendingClientRead {
            pendingClientRead = nil
            r()
        }
    }

    // MARK: - Bytes

    func clientRead(_ buffer: ByteBuffer) {
        guard !finished, let server else { return }
        line.bytesIn += buffer.readableBytes
        lastActivity = client.eventLoop.now
        server.writeAndFlush(buffer, promise: nil)
    }

    func serverRead(_ buffer: ByteBuffer) {
        guard !finished else { return }
        line.bytesOut += buffer.readableBytes
        lastActivity = client.eventLoop.now
        client.writeAndFlush(buffer, promise: nil)
    }

    /// The client sent its last byte: the destination gets the EOF once what came before it is written.
    func clientInputClosed() {
        guard !finished else { return }
        clientEOF = true
        if result == nil { result = .doneRemoteClosed }
        guard let server else { return client.close(promise: nil) }
        if serverEOF { return closeBoth() }
        afterWrites(server) { $0.close(mode: .output, promise: nil) }
    }

    func serverInputClosed() {
        guard !finished else { return }
        serverEOF = true
        if result == nil { result = .doneLocalClosed }
        if clientEOF { return closeBoth() }
        afterWrites(client) { $0.close(mode: .output, promise: nil) }
    }

    func clientInactive() {
        if result == nil { result = .doneRemoteClosed }
        if let server { afterWrites(server) { $0.close(promise: nil) } }
        finish()
    }

    func serverInactive() {
        guard !finished else { return }
        if result == nil { result = .doneLocalClosed }
        afterWrites(client) { $0.close(promise: nil) }
    }

    func snapshot() -> SessionSnapshot {
        let state: String
        if finished || clientEOF || serverEOF {
            state = "closing"
        } else if server != nil {
            state = "relay"
        } else {
            state = line.destination == "-" ? "lookup" : "connecting"
        }
        return SessionSnapshot(id: id, listener: line.listener, kind: .forward, client: line.client, destination: line.destination,
                               state: state, bytesIn: line.bytesIn, bytesOut: line.bytesOut,
                               age: Double((client.eventLoop.now - started).nanoseconds) / 1e9)
    }

    func shutdown() {
        guard !finished else { return }
        result = .shutdown
        closeBoth()
    }

    /// NIO fails writes still queued when a channel's output closes: the close waits for them.
    private func afterWrites(_ channel: Channel, _ then: @escaping (Channel) -> Void) {
        channel.writeAndFlush(channel.allocator.buffer(capacity: 0)).whenComplete { _ in then(channel) }
    }

    private func closeBoth() {
        if let server { afterWrites(server) { $0.close(promise: nil) } }
        afterWrites(client) { $0.close(promise: nil) }
    }

    // MARK: - Time

    private func armTimer() {
        timer?.cancel()
        guard !finished else { return }
        let deadline = lastActivity + .nanoseconds(Int64(env.config.timeoutIdle * 1e9))
        timer = client.eventLoop.scheduleTask(deadline: deadline) { [weak self] in self?.timerFired() }
    }

    private func timerFired() {
        guard !finished else { return }
        if client.eventLoop.now < lastActivity + .nanoseconds(Int64(env.config.timeoutIdle * 1e9)) {
            return armTimer()
        }
        result = .timeout
        client.close(promise: nil)
        server?.close(promise: nil)
    }

    // MARK: - End

    private func totals() -> ForwardLog.Connection {
        var l = line
        l.result = result ?? .doneRemoteClosed
        l.duration = Double((client.eventLoop.now - started).nanoseconds) / 1e9
        return l
    }

    private func finish() {
        guard !finished else { return }
        finished = true
        timer?.cancel()
        env.ended(totals())
        env.registry.remove(self)
    }
}
