import NIOConcurrencyHelpers
import NIOCore
import SMTPGateCore

/// Asks one Postfix-protocol policy server (postgrey, policyd-spf, ...), as Postfix's
/// `check_policy_service` does: each query gets up to `try_limit` attempts `retry_delay` apart, each bounded
/// by `timeout`, and the answer is the server's action or the reason there is none, never an error; the
/// caller then applies `settings.defaultAction`. Connections are kept per event loop (a pool each, touched
/// only on its loop) and reused one request at a time, so no loop ever waits on another or on the server.
public final class PolicyServiceClient: @unchecked Sendable {
    public let settings: PolicyServiceSettings
    // Under the lock: which pool serves which loop. Each pool is then used only on its own loop.
    private let pools = NIOLockedValueBox<(byLoop: [ObjectIdentifier: PolicyServicePool], stopped: Bool)>(([:], false))

    private let limits: PolicyServicePool.Limits
    private let observer: ServiceObserver?

    public convenience init(settings: PolicyServiceSettings, observer: ServiceObserver? = nil) {
        self.init(settings: settings, limits: PolicyServicePool.Limits(), observer: observer)
    }

    init(settings: PolicyServiceSettings, limits: PolicyServicePool.Limits, observer: ServiceObserver? = nil) {
        self.settings = settings
        self.limits = limits
        self.observer = observer
    }

    /// The answer to `request`, completed on `loop`. The settings' `policy_context`, when set, replaces the
    /// request's.
    public func query(_ request: PolicyRequest, on loop: EventLoop) -> EventLoopFuture<PolicyServiceAnswer> {
        guard let observer else { return ask(request, on: loop) }
        let started = NIODeadline.now()
        let service = settings.endpoint.description
        return ask(request, on: loop).map { answer in
            let result: ServiceObservation.PolicyResult
            if case .action = answer { result = .answered } else { result = .failed }
            observer.observe(.policyQuery(service: service, result, seconds: Double((NIODeadline.now() - started).nanoseconds) / 1e9))
            return answer
        }
    }

    private func ask(_ request: PolicyRequest, on loop: EventLoop) -> EventLoopFuture<PolicyServiceAnswer> {
        var request = request
        if !settings.policyContext.isEmpty { request.policyContext = settings.policyContext }
        let bytes = request.encode()
        guard let pool = self.pool(for: loop) else { return loop.makeSucceededFuture(.failed(reason: "shutting down")) }
        if loop.inEventLoop { return pool.query(bytes) }
        return loop.flatSubmit { pool.query(bytes) }.recover { _ in .failed(reason: "shutting down") }
    }

    /// Closes every connection; queries after it fail at once.
    public func shutdown() {
        let all = pools.withLockedValue { pools -> [PolicyServicePool] in
            pools.stopped = true
            return Array(pools.byLoop.values)
        }
        for pool in all {
            pool.loop.execute { pool.stop() }
        }
    }

    /// Open connections (connecting, busy or idle) and idle ones on `loop`, for tests and the status view.
    func connections(on loop: EventLoop) -> EventLoopFuture<(open: Int, idle: Int)> {
        guard let pool = pools.withLockedValue({ $0.byLoop[ObjectIdentifier(loop)] }) else {
            return loop.makeSucceededFuture((0, 0))
        }
        return loop.submit { (pool.open, pool.idleCount) }
    }

    /// `loop`'s pool, made on first use; none once shut down.
    private func pool(for loop: EventLoop) -> PolicyServicePool? {
        pools.withLockedValue { pools in
            guard !pools.stopped else { return nil }
            let key = ObjectIdentifier(loop)
            if let pool = pools.byLoop[key] { return pool }
            let pool = PolicyServicePool(settings: settings, limits: limits, loop: loop)
            pools.byLoop[key] = pool
            return pool
        }
    }
}
