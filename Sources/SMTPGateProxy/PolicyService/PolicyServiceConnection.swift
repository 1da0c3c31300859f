#if canImport(Glibc)
import Glibc
#endif
import NIOCore
import NIOPosix
import SMTPGateCore

/// One connection to a policy server, confined to its pool's event loop: one request at a time, its answer
/// read by `PolicyServiceReader`. Whatever goes wrong (a protocol error, bytes nobody asked for, the server
/// closing, a write failing) closes it; the pool then forgets it.
final class PolicyServiceConnection {
    enum State {
        case connecting(PolicyServicePool.Attempt)
        case busy(PolicyServicePool.Attempt)
        case idle
        case closed
    }

    // Strong: the pool lives as long as its client, and a closed connection lets go of it.
    private let pool: PolicyServicePool
    private let loop: EventLoop
    let born = NIODeadline.now()
    private(set) var requests = 0
    private(set) var state: State
    private var channel: Channel?
    private var reader = PolicyServiceReader()
    private var idleTimer: Scheduled<Void>?
    /// Set once the pool counted this connection out, so it is counted out once.
    var forgotten = false

    var isClosed: Bool {
        if case .closed = state { return true }
        return false
    }

    private init(pool: PolicyServicePool, loop: EventLoop, attempt: PolicyServicePool.Attempt) {
        self.pool = pool
        self.loop = loop
        self.state = .connecting(attempt)
    }

    /// A new connection that sends `attempt`'s request once connected (or fails it).
    static func open(for attempt: PolicyServicePool.Attempt, pool: PolicyServicePool, endpoint: PolicyServiceEndpoint,
                     timeout: TimeAmount, on loop: EventLoop) -> PolicyServiceConnection {
        let connection = PolicyServiceConnection(pool: pool, loop: loop, attempt: attempt)
        attempt.connection = connection
        connection.connect(endpoint, timeout: timeout)
        return connection
    }

    private func connect(_ endpoint: PolicyServiceEndpoint, timeout: TimeAmount) {
        let bootstrap = ClientBootstrap(group: loop)
            .connectTimeout(timeout)
            .channelInitializer { [self] ch in
                ch.pipeline.addHandler(PolicyServiceHandler(connection: self))
            }
        let connected: EventLoopFuture<Channel>
        switch endpoint {
        case .unix(let path):
            connected = bootstrap.connect(unixDomainSocketPath: path)
        case .inet(let ip, let port):
            do {
                connected = bootstrap.channelOption(.tcpOption(.tcp_nodelay), value: 1)
                    .connect(to: try SocketAddress(ipAddress: ip.text, port: port))
            } catch {
                fail("unusable address \(endpoint)")
                return
            }
        }
        connected.whenComplete { [self] result in
            switch result {
            case .success(let ch):
                channel = ch
                switch state {
                case .connecting(let attempt):
                    if attempt.finished {
                        // Timed out while connecting; the connection may still serve the next query.
                        state = .idle
                        pool.released(self)
                    } else {
                        start(attempt)
                    }
                case .closed:
                    ch.close(promise: nil)
                case .busy, .idle:
                    break
                }
            case .failure(let error):
                fail(Self.reason(error, timeout: timeout))
            }
        }
    }

    /// Sends `attempt`'s request; the connection must be idle (or connected for it).
    func start(_ attempt: PolicyServicePool.Attempt) {
        guard let channel, !isClosed else {
            attempt.finish(.failed(reason: "connection closed"))
            return
        }
        cancelIdleTimer()
        state = .busy(attempt)
        attempt.connection = self
        reader = PolicyServiceReader()
        requests += 1
        channel.writeAndFlush(channel.allocator.buffer(bytes: attempt.request)).whenFailure { [self] error in
            guard case .busy(let current) = state, current === attempt else { return }
            attempt.finish(.failed(reason: "cannot send the request: \(RelaySession.reason(error))"))
            close()
        }
    }

    func read(_ bytes: ByteBufferView) {
        switch state {
        case .busy(let attempt):
            guard let response = reader.feed(bytes) else { return }
            switch response {
            case .action(let action):
                state = .idle
                if reader.extraBytes > 0 { close() } else { pool.released(self) }
                attempt.finish(.action(action))
            case .protocolError(let why):
                // Out of step for good; the attempt fails with why, not with the close.
                state = .idle
                close()
                attempt.finish(.failed(reason: "policy server sent \(why)"))
            }
        case .idle:
            // Nothing is asked, so nothing may come: the connection is out of step.
            close()
        case .connecting, .closed:
            break
        }
    }

    /// The channel went away; a request in flight fails with what was read of its answer.
    func inactive() {
        let previous = state
        state = .closed
        cancelIdleTimer()
        pool.forget(self)
        if case .busy(let attempt) = previous, case .protocolError(let why) = reader.end() {
            attempt.finish(.failed(reason: "policy server \(why)"))
        }
    }

    func armIdleTimer(_ amount: TimeAmount) {
        cancelIdleTimer()
        idleTimer = loop.scheduleTask(in: amount) { [self] in
            idleTimer = nil
            close()
        }
    }

    private func cancelIdleTimer() {
        idleTimer?.cancel()
        idleTimer = nil
    }

    /// Closes at once as far as the pool is concerned; the channel's end follows.
    func close() {
        guard !isClosed else { return }
        let previous = state
        state = .closed
        cancelIdleTimer()
        pool.forget(self)
        if let channel {
            channel.close(promise: nil)
        }
        if case .busy(let attempt) = previous {
            attempt.finish(.failed(reason: "connection closed"))
        }
    }

    private func fail(_ reason: String) {
        let previous = state
        state = .closed
        pool.forget(self)
        if case .connecting(let attempt) = previous { attempt.finish(.failed(reason: reason)) }
    }

    static func reason(_ error: Error, timeout: TimeAmount) -> String {
        ConnectFailure.reason(error, timeout: timeout, timedOut: "timed out connecting after")
    }
}

/// Hands what the policy server sends, and the connection's end, to the connection.
private final class PolicyServiceHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let connection: PolicyServiceConnection

    init(connection: PolicyServiceConnection) {
        self.connection = connection
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        connection.read(unwrapInboundIn(data).readableBytesView)
    }

    func channelInactive(context: ChannelHandlerContext) {
        connection.inactive()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}
