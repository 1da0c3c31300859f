#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import SMTPGateCore

/// Where log records go. The daemon passes its log writer's `emit`; tests collect them.
public typealias HelperLogEmitter = @Sendable (LogRecord) -> Void

public struct HelperServerConfiguration: Sendable {
    public var listen: [SocketAddress]
    public var policy: HelperPolicy
    /// Threads doing conntrack lookups, each with its own netlink handle.
    public var workers: Int
    /// Lookups waiting or running at most; one more is dropped as `busy`.
    public var maxPending: Int
    /// At most one `drop` line per reason per this many seconds.
    public var dropLogInterval: Double

    public init(listen: [SocketAddress], policy: HelperPolicy, workers: Int = max(2, System.coreCount),
                maxPending: Int = 1024, dropLogInterval: Double = 10) {
        self.listen = listen
        self.policy = policy
        self.workers = workers
        self.maxPending = maxPending
        self.dropLogInterval = dropLogInterval
    }
}

/// The UDP side: one datagram channel per --listen address on one event loop, lookups on a thread
/// pool, replies only to the query's source address:port and never longer than the query.
public final class HelperServer: @unchecked Sendable {
    public let configuration: HelperServerConfiguration
    public let counters: HelperCounters
    let requests: RequestHandler
    private let lookup: ConnectionLookup
    private let log: HelperLogEmitter
    private let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    private let pool: NIOThreadPool
    private let pending = NIOLockedValueBox(0)
    private let dropLog: NIOLockedValueBox<DropLogLimiter>
    private let errorLog: NIOLockedValueBox<DropLogLimiter>
    private let lastError = NIOLockedValueBox("")
    private var channels: [Channel] = []
    private var tick: RepeatedTask?
    private let stopped = NIOLockedValueBox(false)

    public init(configuration: HelperServerConfiguration, lookup: ConnectionLookup,
                log: @escaping HelperLogEmitter, clock: @escaping @Sendable () -> UInt64 = RequestHandler.unixNow,
                metrics: HelperMetrics? = nil) {
        self.counters = HelperCounters(metrics: metrics)
        self.configuration = configuration
        self.requests = RequestHandler(policy: configuration.policy, clock: clock)
        self.lookup = lookup
        self.log = log
        self.pool = NIOThreadPool(numberOfThreads: max(1, configuration.workers))
        self.dropLog = NIOLockedValueBox(DropLogLimiter(interval: configuration.dropLogInterval))
        self.errorLog = NIOLockedValueBox(DropLogLimiter(interval: configuration.dropLogInterval))
    }

    /// Binds every listen address; on any failure closes what was bound and throws. Returns the bound
    /// addresses (port 0 in the configuration gets a real one).
    @discardableResult
    public func start() throws -> [SocketAddress] {
        pool.start()
        let loop = group.next()
        var bound: [Channel] = []
        for address in configuration.listen {
            // No SO_REUSEADDR: on Linux it lets a second UDP socket bind the same address and take
            // the datagrams, so a second helper would start silently instead of failing.
            let bootstrap = DatagramBootstrap(group: loop)
                .channelInitializer { [self] channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(DatagramHandler(server: self))
                    }
                }
            do {
                let channel: Channel
                if case .v6 = address {
                    // IPv6 listeners are IPv6 only, so "--listen 0.0.0.0 --listen [::]" binds both.
                    channel = try bootstrap
                        .channelOption(ChannelOptions.socket(SocketOptionLevel(IPPROTO_IPV6), SocketOptionName(IPV6_V6ONLY)), value: 1)
                        .bind(to: address).wait()
                } else {
                    channel = try bootstrap.bind(to: address).wait()
                }
                bound.append(channel)
            } catch {
                bound.forEach { try? $0.close().wait() }
                try? pool.syncShutdownGracefully()
                try? group.syncShutdownGracefully()
                let why = (error as? IOError).map { errnoText($0.errnoCode) } ?? "\(error)"
                throw HelperError("cannot listen on \(Self.show(address)): \(why)")
            }
        }
        channels = bound
        let interval = configuration.dropLogInterval
        tick = loop.scheduleRepeatedTask(initialDelay: .seconds(1), delay: .milliseconds(Int64(interval * 1000))) {
            [self] _ in flushDropLog(final: false)
        }
        return bound.compactMap { $0.localAddress }
    }

    /// Closes the sockets, lets running lookups finish, logs held-back drop counts.
    public func stop() {
        let first = stopped.withLockedValue { s -> Bool in
            defer { s = true }
            return !s
        }
        guard first else { return }
        tick?.cancel()
        channels.forEach { try? $0.close().wait() }
        try? pool.syncShutdownGracefully()
        try? group.syncShutdownGracefully()
        flushDropLog(final: true)
    }

    /// The `counters` log line.
    public func logCounters() {
        log(LogRecord(.info, "counters", counters.snapshot.fields))
    }

    // MARK: - per datagram (on the event loop)

    func received(_ envelope: AddressedEnvelope<ByteBuffer>, on channel: Channel) {
        let remote = envelope.remoteAddress
        guard let source = Self.addressBytes(remote) else { return }
        let size = envelope.data.readableBytes
        let bytes = size > RequestHandler.maximumQuerySize
            ? Array(repeating: 0, count: RequestHandler.maximumQuerySize + 1)  // refused as long, not copied
            : Array(envelope.data.readableBytesView)
        switch requests.decide(bytes, from: source) {
        case .drop(let reason):
            drop(reason, from: remote)
        case .lookup(let query):
            let admitted = pending.withLockedValue { n -> Bool in
                guard n < configuration.maxPending else { return false }
                n += 1
                return true
            }
            guard admitted else { return drop(DropReason.busy, from: remote) }
            let lookup = self.lookup
            let counters = self.counters
            let pending = self.pending
            let future = pool.runIfActive(eventLoop: channel.eventLoop) { () -> LookupResult in
                defer { pending.withLockedValue { $0 -= 1 } }
                let start = DispatchTime.now().uptimeNanoseconds
                let result = lookup.lookup(query.seen)
                let micros = (DispatchTime.now().uptimeNanoseconds &- start) / 1000
                counters.looked(result, microseconds: micros)
                return result
            }
            future.whenComplete { [self] outcome in
                guard case .success(let result) = outcome else {
                    // The pool is shutting down: nothing ran, nothing to answer.
                    pending.withLockedValue { $0 -= 1 }
                    return
                }
                if case .error(let message) = result { lookupFailed(message) }
                guard let reply = requests.reply(to: query, result: result), reply.count <= size else { return }
                let buffer = channel.allocator.buffer(bytes: reply)
                channel.writeAndFlush(AddressedEnvelope(remoteAddress: remote, data: buffer), promise: nil)
            }
        }
    }

    func drop(_ reason: String, from remote: SocketAddress) {
        counters.rejected(reason)
        let now = Self.monotonicSeconds()
        if let count = dropLog.withLockedValue({ $0.note(reason, now: now) }) {
            log(LogRecord(.notice, "drop", [("reason", .text(reason)), ("count", .int(count)),
                                           ("source", .text(Self.show(remote)))]))
        }
    }

    private func lookupFailed(_ message: String) {
        lastError.withLockedValue { $0 = message }
        if let count = errorLog.withLockedValue({ $0.note("lookup_error", now: Self.monotonicSeconds()) }) {
            log(LogRecord(.error, "lookup_error", [("count", .int(count)), ("error", .text(LogEscape.escape(message)))]))
        }
    }

    private func flushDropLog(final: Bool) {
        let now = Self.monotonicSeconds()
        let drops = dropLog.withLockedValue { final ? $0.drain() : $0.due(now: now) }
        for (reason, count) in drops {
            log(LogRecord(.notice, "drop", [("reason", .text(reason)), ("count", .int(count))]))
        }
        let errors = errorLog.withLockedValue { final ? $0.drain() : $0.due(now: now) }
        for (_, count) in errors {
            let message = lastError.withLockedValue { $0 }
            log(LogRecord(.error, "lookup_error", [("count", .int(count)), ("error", .text(LogEscape.escape(message)))]))
        }
    }

    // MARK: - helpers

    static func monotonicSeconds() -> Double {
        Double(DispatchTime.now().uptimeNanoseconds) / 1e9
    }

    /// The address's bytes, IPv4-mapped IPv6 unmapped.
    static func addressBytes(_ address: SocketAddress) -> [UInt8]? {
        switch address {
        case .v4(let a):
            var raw = a.address.sin_addr
            return withUnsafeBytes(of: &raw) { Array($0) }
        case .v6(let a):
            var raw = a.address.sin6_addr
            return AddressBytes.unmapped(withUnsafeBytes(of: &raw) { Array($0) })
        default:
            return nil
        }
    }

    static func show(_ address: SocketAddress) -> String {
        guard let bytes = addressBytes(address), let port = address.port else { return "\(address)" }
        return AddressBytes.format(bytes, port: UInt16(truncatingIfNeeded: port))
    }
}

final class DatagramHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    typealias OutboundOut = AddressedEnvelope<ByteBuffer>
    private let server: HelperServer

    init(server: HelperServer) {
        self.server = server
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        server.received(unwrapInboundIn(data), on: context.channel)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // A UDP socket reports ICMP errors (port unreachable from a proxy that went away) here; the
        // channel stays usable, so there is nothing to close.
    }
}

public struct HelperError: Error, CustomStringConvertible {
    public let description: String
    public init(_ d: String) { description = d }
}
