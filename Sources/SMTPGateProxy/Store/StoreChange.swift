/// One write to the state store.
public enum StoreChange: Sendable, Equatable {
    case putLock(StoredLock)
    case removeLock(key: String)
    case putCounter(StoredCounter)
    /// Locks expired before this time, counters whose windows both ended before it, and old tombstones.
    case pruneExpired(before: Double)
}
