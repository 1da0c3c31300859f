import NIOCore
import NIOPosix
import SMTPGateCore

/// Everything a session needs from the daemon, fixed when the session opens (a reload applies to new
/// sessions only).
struct SessionEnvironment {
    let config: Config
    let settings: SessionSettings
    let logPolicy: LogPolicy
    let events: EventLog
    let registry: SessionRegistry
    let listenerName: String
}

/// One client connection and its upstream, both on the client's event loop. The SMTP decisions are the
/// `SessionMachine`'s; this class moves bytes, keeps time and applies backpressure both ways.
final class RelaySession {
    let id: String
    let client: Channel
    private(set) var server: Channel?
    private var machine: SessionMachine
    private let env: SessionEnvironment
    private var context: SessionContext
    private let started = NIODeadline.now()
    private var lastActivity = NIODeadline.now()
    private var phase = SessionMachine.Phase.relay
    private var phaseStarted = NIODeadline.now()
    private var timer: Scheduled<Void>?
    private var bytesIn = 0
    private var bytesOut = 0
    private var clientPaused = false
    private var finished = false
    private enum Upstream { case connecting, open, gone }
    private var upstream = Upstream.connecting
    var pendingClientRead: (() -> Void)?
    var pendingServerRead: (() -> Void)?

    init(id: String, client: Channel, destination: SocketAddress, env: SessionEnvironment) {
        self.id = id
        self.client = client
        self.env = env
        self.machine = SessionMachine(settings: env.settings)
        self.context = SessionContext(
            id: id, listener: env.listenerName,
            client: client.remoteAddress.map(Self.describe) ?? "-",
            local: client.localAddress.map(Self.describe) ?? "-",
            destination: Self.describe(destination))
    }

    static func describe(_ a: SocketAddress) -> String {
        guard let ip = a.ipAddress, let port = a.port else { return "\(a)" }
        return a.protocol == .inet6 ? "[\(ip)]:\(port)" : "\(ip):\(port)"
    }

    // MARK: - Start

    func start(destination: SocketAddress) {
        env.events.record(SessionLog.open(context))
        armTimer()
        var bootstrap = ClientBootstrap(group: client.eventLoop)
            .channelOption(.allowRemoteHalfClosure, value: true)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .connectTimeout(.nanoseconds(Int64(env.config.timeoutConnect * 1e9)))
            .channelInitializer { [self] ch in
                ch.pipeline.addHandler(RelaySideHandler(session: self, side: .server))
            }
        if let out = env.config.outgoingAddr, let local = try? SocketAddress(ipAddress: out.text, port: 0) {
            bootstrap = bootstrap.bind(to: local)
        }
        bootstrap.connect(to: destination).whenComplete { [self] result in
            switch result {
            case .success(let ch):
                if finished {
                    ch.close(promise: nil)
                    return
                }
                server = ch
                upstream = .open
                serverWritabilityChanged()
            case .failure(let error):
                upstream = .gone
                guard !finished else { return }
                let reason = Self.reason(error)
                env.events.record(SessionLog.connectFailed(context, error: reason))
                apply(machine.serverConnectFailed(destination: context.destination, reason: reason), input: nil, fromClient: false)
            }
        }
    }

    static func reason(_ error: Error) -> String {
        if let e = error as? NIOConnectionError, let first = e.connectionErrors.first {
            return reason(first.error)
        }
        if let e = error as? IOError {
            switch e.errnoCode {
            case ECONNREFUSED: return "connection refused"
            case ETIMEDOUT: return "timed out"
            case EHOSTUNREACH: return "host unreachable"
            case ENETUNREACH: return "network unreachable"
            case EADDRNOTAVAIL: return "outgoing address not available"
            default: return "error \(e.errnoCode)"
            }
        }
        if let e = error as? ChannelError, case .connectTimeout = e { return "timed out" }
        return "\(error)"
    }

    // MARK: - Flow control (called by the handlers' outbound `read`)

    /// Once the upstream is gone the client is still read: the takeover responder answers it.
    var clientMayRead: Bool {
        guard !clientPaused, !finished else { return false }
        switch upstream {
        case .connecting: return false
        case .open: return server?.isWritable ?? false
        case .gone: return true
        }
    }

    var serverMayRead: Bool { !finished && client.isWritable }

    func serverWritabilityChanged() {
        if clientMayRead, let r = pendingClientRead {
            pendingClientRead = nil
            r()
        }
    }

    func clientWritabilityChanged() {
        if serverMayRead, let r = pendingServerRead {
            pendingServerRead = nil
            r()
        }
    }

    // MARK: - Input

    func clientRead(_ buffer: ByteBuffer) {
        guard !finished else { return }
        bytesIn += buffer.readableBytes
        lastActivity = .now()
        let out = buffer.withUnsafeReadableBytes { machine.clientBytes($0) }
        apply(out, input: buffer, fromClient: true)
    }

    func serverRead(_ buffer: ByteBuffer) {
        guard !finished else { return }
        lastActivity = .now()
        let out = buffer.withUnsafeReadableBytes { machine.serverBytes($0) }
        apply(out, input: buffer, fromClient: false)
    }

    func clientInputClosed() {
        guard !finished else { return }
        apply(machine.clientClosed(), input: nil, fromClient: true)
    }

    func serverInputClosed() {
        guard !finished else { return }
        apply(machine.serverClosed(), input: nil, fromClient: false)
    }

    func clientInactive() {
        if !finished {
            apply(machine.clientClosed(), input: nil, fromClient: true)
        }
        finish()
    }

    func serverInactive() {
        upstream = .gone
        guard !finished else { return }
        apply(machine.serverClosed(), input: nil, fromClient: false)
        serverWritabilityChanged()
    }

    func shutdown() {
        guard !finished else { return }
        apply(machine.shutdown(), input: nil, fromClient: false)
    }

    // MARK: - Output

    private func apply(_ out: MachineOutput, input: ByteBuffer?, fromClient: Bool) {
        for e in out.events {
            env.events.record(SessionLog.event(e, context, policy: env.logPolicy))
        }
        if out.pauseClient { clientPaused = true }
        let toServer = server.map { write(out.toServer, to: $0, input: fromClient ? input : nil, closing: out.closeServer) }
        let toClient = write(out.toClient, to: client, input: fromClient ? nil : input, closing: out.closeClient)
        bytesOut += toClient.count
        if out.resumeClient {
            clientPaused = false
            serverWritabilityChanged()
        }
        if machine.phase != phase {
            phase = machine.phase
            phaseStarted = .now()
            armTimer()
        }
        // Closing last: a close can complete at once and end the session, which logs its totals.
        if let server {
            if out.closeServer { close(server, after: toServer?.last) }
            if out.halfCloseServer { server.close(mode: .output, promise: nil) }
        }
        if out.closeClient { close(client, after: toClient.last) }
    }

    /// Writes without a promise each (they cost an allocation per write); only a write that a close must
    /// wait for gets one.
    private func write(_ segments: [MachineOutput.Segment], to channel: Channel, input: ByteBuffer?,
                       closing: Bool) -> (count: Int, last: EventLoopFuture<Void>?) {
        var total = 0
        var last: EventLoopFuture<Void>?
        for (n, seg) in segments.enumerated() {
            let buf: ByteBuffer
            switch seg {
            case .input(let r):
                guard let input, let slice = input.getSlice(at: input.readerIndex + r.lowerBound, length: r.count) else { continue }
                buf = slice
            case .bytes(let b):
                buf = channel.allocator.buffer(bytes: b)
            }
            total += buf.readableBytes
            if closing, n == segments.count - 1 {
                last = channel.write(buf)
            } else {
                channel.write(buf, promise: nil)
            }
        }
        if !segments.isEmpty { channel.flush() }
        return (total, last)
    }

    private func close(_ channel: Channel, after write: EventLoopFuture<Void>?) {
        if let write {
            write.whenComplete { _ in channel.close(promise: nil) }
        } else {
            channel.close(promise: nil)
        }
    }

    // MARK: - Time

    private var currentTimeout: TimeAmount {
        let seconds: Double
        switch phase {
        case .relay: seconds = env.config.timeoutIdle
        case .takeover: seconds = env.config.timeoutSession
        case .blind: seconds = env.config.timeoutDirect
        case .closed: seconds = 5
        }
        return .nanoseconds(Int64(seconds * 1e9))
    }

    /// In takeover the bound runs from the takeover; otherwise from the last byte either way.
    private var deadline: NIODeadline {
        (phase == .takeover ? phaseStarted : lastActivity) + currentTimeout
    }

    private func armTimer() {
        timer?.cancel()
        guard !finished else { return }
        timer = client.eventLoop.scheduleTask(deadline: deadline) { [weak self] in self?.timerFired() }
    }

    private func timerFired() {
        guard !finished else { return }
        if phase == .closed {
            client.close(promise: nil)
            server?.close(promise: nil)
            return
        }
        if NIODeadline.now() < deadline {
            armTimer()
            return
        }
        apply(machine.timedOut(), input: nil, fromClient: false)
        armTimer()
    }

    // MARK: - End

    private func finish() {
        guard !finished else { return }
        finished = true
        timer?.cancel()
        server?.close(promise: nil)
        let totals = SessionLog.Totals(
            helo: machine.helo, transactions: machine.transactions, bytesIn: bytesIn, bytesOut: bytesOut,
            duration: Double((NIODeadline.now() - started).nanoseconds) / 1e9,
            closedBy: machine.closedBy?.rawValue ?? "client", reason: machine.closeReason ?? "client_closed",
            takeover: machine.takeoverReason)
        env.events.record(SessionLog.close(context, totals, policy: env.logPolicy))
        env.registry.remove(self)
    }
}
