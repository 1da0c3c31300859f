import NIOCore
import NIOPosix

/// What went wrong connecting to a local service (a scanner, a policy server), as its log line says it:
/// the timeout, a unix socket that is missing or forbidden, or the relay's wording for the rest.
enum ConnectFailure {
    /// `timedOut`: the words before the timeout ("timed out after", "timed out connecting after").
    static func reason(_ error: Error, timeout: TimeAmount, timedOut: String) -> String {
        if let e = error as? ChannelError, case .connectTimeout = e {
            return "\(timedOut) \(ScannerConnection.describe(timeout))"
        }
        if let e = error as? IOError {
            switch e.errnoCode {
            case ENOENT: return "no such socket"
            case EACCES, EPERM: return "permission denied"
            default: break
            }
        }
        return RelaySession.reason(error)
    }
}
