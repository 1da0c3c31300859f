import NIOCore
import SMTPGateCore

/// One event loop's connections to one policy service, touched only on that loop. Idle connections are
/// reused (the most recently used first) and closed after `max_idle`, at `max_ttl` age or after
/// `request_limit` requests; at most `limits.open` are open (`limits.idle` of them idle), and queries beyond
/// them wait (at most `limits.waiting`, each within its attempt's timeout) for one to come free.
final class PolicyServicePool {
    /// How many connections a pool keeps; fixed for the daemon, smaller in tests.
    struct Limits: Sendable, Equatable {
        var idle = 16
        var open = 64
        var waiting = 1024
    }

    /// One try at one query: a request and, within the timeout, its answer or the reason there is none.
    final class Attempt {
        let request: [UInt8]
        private let promise: EventLoopPromise<PolicyServiceAnswer>
        var timer: Scheduled<Void>?
        private(set) var finished = false
        /// The connection carrying (or opened for) it, if any.
        var connection: PolicyServiceConnection?

        init(request: [UInt8], promise: EventLoopPromise<PolicyServiceAnswer>) {
            self.request = request
            self.promise = promise
        }

        var futureResult: EventLoopFuture<PolicyServiceAnswer> { promise.futureResult }

        /// The first outcome wins; later ones (a timer racing an answer, the close after a timeout) are dropped.
        func finish(_ answer: PolicyServiceAnswer) {
            guard !finished else { return }
            finished = true
            timer?.cancel()
            timer = nil
            connection = nil
            promise.succeed(answer)
        }
    }

    let loop: EventLoop
    let settings: PolicyServiceSettings
    let limits: Limits
    private let timeout: TimeAmount
    private var idle: [PolicyServiceConnection] = []
    private var waiting = CircularBuffer<Attempt>()
    /// Connections connecting, busy or idle.
    private(set) var open = 0
    private var stopped = false

    init(settings: PolicyServiceSettings, limits: Limits, loop: EventLoop) {
        self.settings = settings
        self.limits = limits
        self.loop = loop
        self.timeout = Self.amount(settings.timeout)
    }

    /// Seconds as a `TimeAmount`, held to 0...1 week whatever the settings say (they may be built in code).
    static func amount(_ seconds: Double) -> TimeAmount {
        guard seconds.isFinite, seconds > 0 else { return .zero }
        return .nanoseconds(Int64(min(seconds, 7 * 86400) * 1e9))
    }

    var idleCount: Int { idle.count }

    /// The answer after up to `try_limit` attempts, `retry_delay` apart; never fails.
    func query(_ request: [UInt8]) -> EventLoopFuture<PolicyServiceAnswer> {
        loop.preconditionInEventLoop()
        return attempt(request, number: 1)
    }

    private func attempt(_ request: [UInt8], number: Int) -> EventLoopFuture<PolicyServiceAnswer> {
        exchange(request, fresh: number > 1).flatMap { [self] answer in
            guard case .failed(let reason) = answer else { return loop.makeSucceededFuture(answer) }
            guard number < settings.tryLimit, !stopped else {
                return loop.makeSucceededFuture(number == 1 ? answer : .failed(reason: "\(number) attempts failed, the last: \(reason)"))
            }
            let delay = Self.amount(settings.retryDelay)
            return loop.scheduleTask(in: delay) {}.futureResult
                .flatMap { [self] in attempt(request, number: number + 1) }
                .recover { _ in .failed(reason: "shutting down") }
        }
    }

    /// One attempt, bounded by the timeout; a retry (`fresh`) does not trust an idle connection.
    private func exchange(_ request: [UInt8], fresh: Bool) -> EventLoopFuture<PolicyServiceAnswer> {
        let attempt = Attempt(request: request, promise: loop.makePromise())
        guard !stopped else {
            attempt.finish(.failed(reason: "shutting down"))
            return attempt.futureResult
        }
        let timer = loop.scheduleTask(in: timeout) { [self] in
            timedOut(attempt)
        }
        // Also when the loop shuts down first: the attempt must never be left pending.
        timer.futureResult.whenFailure { _ in attempt.finish(.failed(reason: "shutting down")) }
        attempt.timer = timer
        if fresh {
            // A retry after a failure: the server may have restarted, and its old connections with it.
            for connection in idle { connection.close() }
        }
        if let connection = takeIdle() {
            connection.start(attempt)
        } else if open < limits.open {
            connect(attempt)
        } else if waiting.count < limits.waiting {
            waiting.append(attempt)
        } else {
            attempt.finish(.failed(reason: "more than \(limits.waiting) policy queries waiting for a connection"))
        }
        return attempt.futureResult
    }

    private func timedOut(_ attempt: Attempt) {
        let connection = attempt.connection
        attempt.finish(.failed(reason: "timed out after \(ScannerConnection.describe(timeout))"))
        if let connection {
            // A late answer would be taken for the next request's.
            connection.close()
        } else {
            // Still waiting for a connection: its place goes to a live query.
            waiting.removeAll { $0 === attempt }
        }
    }

    private func takeIdle() -> PolicyServiceConnection? {
        while let connection = idle.popLast() {
            if connection.isClosed { continue }
            if usable(connection) { return connection }
            connection.close()
        }
        return nil
    }

    private func usable(_ connection: PolicyServiceConnection) -> Bool {
        if settings.requestLimit > 0, connection.requests >= settings.requestLimit { return false }
        return Double((NIODeadline.now() - connection.born).nanoseconds) / 1e9 < settings.maxTTL
    }

    private func connect(_ attempt: Attempt) {
        open += 1
        _ = PolicyServiceConnection.open(for: attempt, pool: self, endpoint: settings.endpoint, timeout: timeout, on: loop)
    }

    /// A connection answered and is free: the next waiting query gets it, or it waits idle.
    func released(_ connection: PolicyServiceConnection) {
        guard !stopped, !connection.isClosed, usable(connection) else {
            connection.close()
            return
        }
        while let next = waiting.popFirst() {
            if next.finished { continue }
            connection.start(next)
            return
        }
        if idle.count >= limits.idle {
            idle.removeFirst().close()
        }
        idle.append(connection)
        connection.armIdleTimer(Self.amount(settings.maxIdle))
    }

    /// A connection closed or never opened: it no longer counts, and a waiting query may open one.
    func forget(_ connection: PolicyServiceConnection) {
        guard !connection.forgotten else { return }
        connection.forgotten = true
        open -= 1
        idle.removeAll { $0 === connection }
        while open < limits.open, !stopped, let next = waiting.popFirst() {
            if next.finished { continue }
            connect(next)
        }
    }

    /// Closes every connection; queries after it fail at once, waiting ones with "shutting down".
    func stop() {
        stopped = true
        while let next = waiting.popFirst() { next.finish(.failed(reason: "shutting down")) }
        for connection in idle { connection.close() }
        idle = []
    }
}
