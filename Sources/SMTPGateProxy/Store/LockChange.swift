/// What happened to a lock since a change-feed mark. A removal names who removed it, so a writer can
/// skip its own.
public enum LockChange: Sendable, Equatable {
    case put(StoredLock)
    case removed(key: String, source: String)
}
