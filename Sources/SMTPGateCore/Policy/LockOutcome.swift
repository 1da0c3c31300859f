/// What `LockTable.lock` did. The proxy runs the action script and logs a lock only for `.locked`,
/// so that one client caught many times costs one script run per lock period, as in smtp-gated.
public enum LockOutcome: Sendable, Equatable {
    case locked(Lock)
    case alreadyLocked(Lock)
    case exempt
    case disabled
    case full
}
