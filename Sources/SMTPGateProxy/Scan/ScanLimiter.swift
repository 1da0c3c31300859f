import NIOConcurrencyHelpers
import NIOCore

/// Bounds the scans running at once across the daemon (`max_scans`); the rest wait in arrival order.
final class ScanLimiter: @unchecked Sendable {
    private let lock = NIOLock()
    private let limit: Int
    private var running = 0
    private var waiting: [EventLoopPromise<Void>] = []

    init(limit: Int) {
        self.limit = max(1, limit)
    }

    /// Runs `work` once a slot is free and frees the slot when its future completes.
    func run<T>(on loop: EventLoop, _ work: @escaping () -> EventLoopFuture<T>) -> EventLoopFuture<T> {
        let turn: EventLoopFuture<Void> = lock.withLock {
            if running < limit {
                running += 1
                return loop.makeSucceededFuture(())
            }
            let p = loop.makePromise(of: Void.self)
            waiting.append(p)
            return p.futureResult
        }
        return turn.flatMap(work).always { _ in self.release() }
    }

    private func release() {
        let next: EventLoopPromise<Void>? = lock.withLock {
            if waiting.isEmpty {
                running -= 1
                return nil
            }
            return waiting.removeFirst()
        }
        next?.succeed(())
    }
}
