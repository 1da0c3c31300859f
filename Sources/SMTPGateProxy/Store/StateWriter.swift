#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import NIOConcurrencyHelpers

/// The asynchronous write-through in front of the state store: the proxy submits changes from its
/// event loops and never waits on the database. Changes are coalesced per lock and per counter, held
/// (up to `maxPending`) while the store cannot be written, and written in one transaction per interval
/// on the writer's own queue. Each interval it also reads what other writers sharing the store changed:
/// their locks and their counter rows.
/// The queue holds the writer until `stop()`.
public final class StateWriter: @unchecked Sendable {
    private struct Entry {
        let slot: String
        let change: StoreChange
        let isLock: Bool
    }

    private static let warnEvery = 60.0

    private let lock = NIOLock()
    private let open: () throws(StoreError) -> any StateBackend
    private let interval: Double
    private let maxPending: Int
    private let warn: @Sendable (String) -> Void
    private let queue = DispatchQueue(label: "smtpgate.state-writer")
    private let wake = DispatchSemaphore(value: 0)
    private let done = DispatchSemaphore(value: 0)

    // Under `lock`. Pending changes by submission number; `slots` maps a lock or counter to its newest
    // entry, and the two orders let the oldest counter (or lock) be found when the bound is hit. The
    // orders may hold numbers already replaced; they are skipped and compacted.
    private var entries: [Int: Entry] = [:]
    private var slots: [String: Int] = [:]
    private var counterOrder: [Int] = []
    private var lockOrder: [Int] = []
    private var nextSeq = 0
    private var stopping = false
    private var _failures = 0
    private var _dropped = 0
    private var _onLockChanges: (([LockChange]) -> Void)?
    private var _onCounterChanges: (([StoredCounter]) -> Void)?

    // Only on `queue`.
    private var store: (any StateBackend)?
    private var marks: FeedMarks?
    private var lastWarn: Double?

    /// `marks` is where the feeds start: what the caller read before it loaded the store, so that nothing
    /// written meanwhile is missed; nil starts them at the store's newest versions when it is first opened.
    public init(open: @escaping () throws(StoreError) -> any StateBackend, marks: FeedMarks? = nil, interval: Double = 1.0,
                maxPending: Int = 100_000, warn: @escaping @Sendable (String) -> Void) {
        self.open = open
        self.marks = marks
        self.interval = max(0.01, interval)
        self.maxPending = max(1, maxPending)
        self.warn = warn
        queue.async { self.run() }
    }

    /// Writes that failed since the start.
    public var failures: Int { lock.withLock { _failures } }
    /// Changes waiting to be written.
    public var pending: Int { lock.withLock { entries.count } }
    /// Changes thrown away because `maxPending` were already waiting.
    public var dropped: Int { lock.withLock { _dropped } }

    /// Called on the writer's queue with the lock changes other writers made.
    public var onLockChanges: (([LockChange]) -> Void)? {
        get { lock.withLock { _onLockChanges } }
        set { lock.withLock { _onLockChanges = newValue } }
    }

    /// Called on the writer's queue with the counter rows other writers wrote.
    public var onCounterChanges: (([StoredCounter]) -> Void)? {
        get { lock.withLock { _onCounterChanges } }
        set { lock.withLock { _onCounterChanges = newValue } }
    }

    public func submit(_ change: StoreChange) {
        let slot: String
        let isLock: Bool
        switch change {
        case .putLock(let l): (slot, isLock) = ("L\u{0}" + l.key, true)
        case .removeLock(let key): (slot, isLock) = ("L\u{0}" + key, true)
        case .putCounter(let c): (slot, isLock) = ("C\u{0}\(c.key)\u{0}\(c.kind)\u{0}\(c.seconds)\u{0}\(c.source)", false)
        case .pruneExpired: (slot, isLock) = ("P", false)
        }
        lock.withLock {
            guard !stopping else { return }
            if let old = slots[slot] { entries[old] = nil }
            let seq = nextSeq
            nextSeq += 1
            entries[seq] = Entry(slot: slot, change: change, isLock: isLock)
            slots[slot] = seq
            if isLock { lockOrder.append(seq) } else { counterOrder.append(seq) }
            while entries.count > maxPending { dropOldest() }
            compactOrders()
        }
    }

    /// Asks for a write now and waits up to `timeout` seconds for nothing to be pending.
    public func flush(timeout: Double) -> Bool {
        let deadline = Self.now() + max(0, timeout)
        wake.signal()
        while true {
            if pending == 0 { return true }
            if Self.now() >= deadline { return false }
            usleep(10_000)
        }
    }

    /// Ends the writer after its current write; what is still pending is not written.
    public func stop() {
        let first: Bool = lock.withLock {
            defer { stopping = true }
            return !stopping
        }
        guard first else { return }
        wake.signal()
        done.wait()
    }

    // MARK: - Bound

    private func dropOldest() {
        if !drop(from: &counterOrder) { _ = drop(from: &lockOrder) }
    }

    private func drop(from order: inout [Int]) -> Bool {
        while let seq = order.first {
            order.removeFirst()
            if let e = entries.removeValue(forKey: seq) {
                slots[e.slot] = nil
                _dropped += 1
                return true
            }
        }
        return false
    }

    /// Coalesced resubmits leave stale numbers behind; this keeps the orders within twice the pending count.
    private func compactOrders() {
        if counterOrder.count + lockOrder.count > 2 * entries.count + 1024 {
            counterOrder.removeAll { entries[$0] == nil }
            lockOrder.removeAll { entries[$0] == nil }
        }
    }

    // MARK: - Writer queue

    private func run() {
        while true {
            _ = wake.wait(timeout: .now() + interval)
            if lock.withLock({ stopping }) { break }
            cycle()
        }
        store?.close()
        store = nil
        done.signal()
    }

    private func cycle() {
        do throws(StoreError) {
            let store: any StateBackend
            if let open = self.store { store = open } else { store = try reopen() }
            try write(store)
            try poll(store)
        } catch {
            store?.close()
            store = nil
            let count: Int = lock.withLock {
                _failures += 1
                return entries.count
            }
            let now = Self.now()
            if lastWarn.map({ now - $0 >= Self.warnEvery }) ?? true {
                lastWarn = now
                warn("\(error); \(count) state changes pending, retrying every \(interval) s")
            }
        }
    }

    private func reopen() throws(StoreError) -> any StateBackend {
        let s = try open()
        store = s
        let current = try FeedMarks.current(of: s)
        // A replaced or recreated store starts its versions again: read it all rather than miss changes.
        if var m = marks {
            if m.locks > current.locks { m.locks = 0 }
            if m.counters > current.counters { m.counters = 0 }
            marks = m
        } else {
            marks = current
        }
        return s
    }

    private func write(_ store: any StateBackend) throws(StoreError) {
        let batch: [(Int, Entry)] = lock.withLock { entries.sorted { $0.key < $1.key } }
        guard !batch.isEmpty else { return }
        try store.apply(batch.map { $0.1.change })
        lock.withLock {
            // A change submitted during the write replaced its entry and stays pending.
            for (seq, e) in batch where entries.removeValue(forKey: seq) != nil {
                slots[e.slot] = nil
            }
            compactOrders()
        }
    }

    private func poll(_ store: any StateBackend) throws(StoreError) {
        var m = marks ?? .beginning
        let (changes, lockMark) = try store.lockChanges(since: m.locks)
        let (counters, counterMark) = try store.counterChanges(since: m.counters)
        m.locks = lockMark
        m.counters = counterMark
        marks = m
        let others = changes.filter { c in
            switch c {
            case .put(let l): return l.source != store.source
            case .removed(_, let source): return source != store.source
            }
        }
        if !others.isEmpty, let hand = onLockChanges { hand(others) }
        let theirs = counters.filter { $0.source != store.source }
        if !theirs.isEmpty, let hand = onCounterChanges { hand(theirs) }
    }

    private static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }
}
