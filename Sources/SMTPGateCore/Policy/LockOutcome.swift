/// What `LockTable.lock` did. Only `.locked` is a new lock, so the proxy can run the action script
/// for it alone: one client caught many times then costs one script run per lock period, as in
/// smtp-gated.
public enum LockOutcome: Sendable, Equatable {
    case locked(ClientLock)
    case alreadyLocked(ClientLock)
    case exempt
    case disabled
    case full
}
