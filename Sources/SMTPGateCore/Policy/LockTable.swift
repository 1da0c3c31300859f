/// The locks one proxy knows, keyed by client. Lookups are a hash lookup; expiry keeps a min-heap of
/// expiry times beside the table so that `expire` finds the next expired lock without scanning, and
/// its work per call is bounded by `limit`. Heap entries of locks removed or replaced since are
/// skipped when they surface, and the heap is rebuilt when such stale entries outnumber live ones.
///
/// An IPv6 lock may be on a shorter prefix than the keys looked up (it was made under a smaller
/// `lock_ipv6_prefix`, or by hand for a whole network): it covers every key inside it. Lookups try each
/// shorter prefix length that some lock has, so they stay one hash lookup while all locks have the
/// configured length. Pure bookkeeping: the caller serialises access.
public struct LockTable: Sendable {
    /// `lock_duration`: seconds, 0 = locks off, -1 = until removed.
    public let duration: Int
    public let exempt: AllowList
    public let capacity: Int

    private var locks: [ClientKey: ClientLock] = [:]
    private var heap: [(expires: Double, key: ClientKey)] = []
    /// IPv6 locks per prefix length, so lookups know which shorter prefixes to try.
    private var ipv6Lengths: [UInt8: Int] = [:]

    public init(duration: Int, exempt: AllowList, capacity: Int = 1_000_000) {
        self.duration = duration
        self.exempt = exempt
        self.capacity = max(capacity, 1)
    }

    /// Locks held, including expired ones that `expire` has not removed yet.
    public var count: Int { locks.count }

    /// Locks `key` for `duration` (the table's, or a listener's own `lock_duration`). An active lock is left
    /// as it is, not extended: smtp-gated creates the lock file exclusively and keeps the old one, so a lock
    /// runs from the first offence.
    public mutating func lock(_ key: ClientKey, cause: LockCause, reason: String, duration: Int? = nil,
                              now: Double) -> LockOutcome {
        let duration = duration ?? self.duration
        guard duration != 0 else { return .disabled }
        if key.isExempt(exempt) { return .exempt }
        if let existing = locks[key], existing.isActive(now: now) { return .alreadyLocked(existing) }
        let lock = ClientLock(key: key, cause: cause, reason: reason, created: now,
                        expires: duration < 0 ? nil : now + Double(duration))
        guard add(lock, now: now) else { return .full }
        return .locked(lock)
    }

    /// Takes a lock as it is (from `smtpgate locks add`, the store, another proxy), replacing any lock
    /// for the same client. False when the table is full and no expired lock could make room.
    @discardableResult
    public mutating func add(_ lock: ClientLock) -> Bool {
        add(lock, now: lock.created)
    }

    public mutating func remove(_ key: ClientKey) -> ClientLock? {
        let removed = locks.removeValue(forKey: key)
        if removed != nil { forget(key) }
        return removed
    }

    /// The lock in force for `key`, or for a shorter IPv6 prefix holding it.
    public func active(_ key: ClientKey, now: Double) -> ClientLock? {
        if let lock = locks[key], lock.isActive(now: now) { return lock }
        guard key.isIPv6, ipv6Lengths.count > (ipv6Lengths[key.prefixLength] == nil ? 0 : 1) else { return nil }
        for length in ipv6Lengths.keys where length < key.prefixLength {
            if let lock = locks[key.widened(to: Int(length))], lock.isActive(now: now) { return lock }
        }
        return nil
    }

    /// Removes at most `limit` expired locks, oldest expiry first, and returns them (for the log and
    /// the store). Call it often with a small limit rather than rarely with a large one.
    public mutating func expire(now: Double, limit: Int) -> [ClientLock] {
        var removed: [ClientLock] = []
        var work = 0
        while work < limit, let top = heap.first, top.expires <= now {
            work += 1
            popHeap()
            if let lock = locks[top.key], lock.expires == top.expires {
                locks[top.key] = nil
                forget(top.key)
                removed.append(lock)
            }
        }
        return removed
    }

    /// Active locks, sorted by client.
    public func all(now: Double) -> [ClientLock] {
        locks.values.filter { $0.isActive(now: now) }.sorted { $0.key < $1.key }
    }

    private mutating func add(_ lock: ClientLock, now: Double) -> Bool {
        if locks[lock.key] == nil, locks.count >= capacity {
            _ = expire(now: now, limit: 8)
            guard locks.count < capacity else { return false }
        }
        if locks.updateValue(lock, forKey: lock.key) == nil, lock.key.isIPv6 {
            ipv6Lengths[lock.key.prefixLength, default: 0] += 1
        }
        if let expires = lock.expires {
            pushHeap((expires, lock.key))
            if heap.count > 2 * locks.count + 64 { rebuildHeap() }
        }
        return true
    }

    private mutating func forget(_ key: ClientKey) {
        guard key.isIPv6, let n = ipv6Lengths[key.prefixLength] else { return }
        ipv6Lengths[key.prefixLength] = n > 1 ? n - 1 : nil
    }

    private mutating func rebuildHeap() {
        heap = locks.values.compactMap { lock in lock.expires.map { ($0, lock.key) } }
        var i = heap.count / 2
        while i > 0 {
            i -= 1
            siftDown(i)
        }
    }

    private mutating func pushHeap(_ entry: (expires: Double, key: ClientKey)) {
        heap.append(entry)
        var i = heap.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            guard heap[i].expires < heap[parent].expires else { break }
            heap.swapAt(i, parent)
            i = parent
        }
    }

    private mutating func popHeap() {
        heap.swapAt(0, heap.count - 1)
        heap.removeLast()
        siftDown(0)
    }

    private mutating func siftDown(_ start: Int) {
        var i = start
        while true {
            let left = 2 * i + 1
            guard left < heap.count else { return }
            var smallest = left
            if left + 1 < heap.count, heap[left + 1].expires < heap[left].expires { smallest = left + 1 }
            guard heap[smallest].expires < heap[i].expires else { return }
            heap.swapAt(i, smallest)
            i = smallest
        }
    }
}
