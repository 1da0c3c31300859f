#if canImport(Glibc)
import Glibc
#endif

/// What a listening socket does when accept() fails for want of a descriptor (EMFILE, ENFILE) or of
/// kernel memory (ENOBUFS, ENOMEM). The client stays in the backlog and the socket stays readable, so
/// accepting again at once would spin the event loop without end. A spare descriptor, given up on a
/// descriptor failure, lets that client be accepted and refused (421, come back later) instead of waiting
/// in silence; without a spare to give up (lost to another thread, or still held by the last refusal) the
/// socket pauses, each pause twice the last up to `maxPause`, until a connection is served again.
/// A connection is served only with room for its session: the spare held and one more descriptor free,
/// for the connection to the destination (without it the client would get 421 4.4.1 instead).
/// Failures are reported at most once per `reportInterval`, each report summing up what happened since
/// the previous one.
/// Pure bookkeeping: times are the caller's monotonic nanoseconds, the spare descriptor is the caller's,
/// and the caller serialises access.
public struct AcceptFailures: Sendable {
    public enum Cause: Sendable, Equatable {
        /// The process or the system is out of descriptors: one given back lets one accept through.
        case descriptors
        /// The kernel is short of memory for sockets: only time helps.
        case memory

        /// The errors that leave the client in the backlog; others (ECONNABORTED: the client left) do not.
        public init?(errno code: Int32) {
            switch code {
            case EMFILE, ENFILE: self = .descriptors
            case ENOBUFS, ENOMEM: self = .memory
            default: return nil
            }
        }
    }

    public enum Step: Sendable, Equatable {
        /// Nothing: the accept failed after others succeeded in the same turn, which says only that they
        /// filled the table (Linux takes the descriptor before it looks at the backlog). If a client waits,
        /// the socket is still readable and the next turn's first accept fails for it.
        case nothing
        /// Close the spare descriptor and accept again now: the connection accepted into its slot is refused.
        case acceptOnSpare
        /// Stop accepting until `until` (or until the spare is back, if a refusal holds its slot).
        case pause(until: UInt64)
    }

    /// What happened since the previous report.
    public struct Report: Sendable, Equatable {
        /// The latest failure's, or that of the open that found no descriptor for a refused connection.
        public var errno: Int32
        /// Failed accept() calls.
        public var failed: Int
        /// Connections accepted and refused: on the spare's slot, or with no descriptor left for the session.
        public var refused: Int

        public init(errno: Int32, failed: Int, refused: Int) {
            self.errno = errno
            self.failed = failed
            self.refused = refused
        }
    }

    public static let firstPause: UInt64 = 10_000_000
    public static let maxPause: UInt64 = 1_000_000_000
    public static let reportInterval: UInt64 = 1_000_000_000

    private var nextPause = firstPause
    private var failed = 0
    private var refused = 0
    private var lastErrno: Int32 = 0
    private var lastReport: UInt64?

    public init() {}

    /// An accept() failed; `acceptedThisTurn`: others succeeded before it since the socket was found readable.
    public mutating func failed(_ cause: Cause, errno: Int32, spareHeld: Bool, acceptedThisTurn: Bool,
                                now: UInt64) -> Step {
        if acceptedThisTurn { return .nothing }
        failed += 1
        lastErrno = errno
        if cause == .descriptors, spareHeld { return .acceptOnSpare }
        let pause = nextPause
        nextPause = min(nextPause * 2, Self.maxPause)
        return .pause(until: now + pause)
    }

    /// A connection was accepted. `shortage`: nil when the spare is held (or could be opened again just
    /// now) and one more descriptor is free, otherwise the errno of the open that found none.
    /// Returns true when the connection is to be refused.
    public mutating func accepted(shortage: Int32?) -> Bool {
        guard let shortage else {
            nextPause = Self.firstPause
            return false
        }
        refused += 1
        lastErrno = shortage
        return true
    }

    /// The report to log now, if anything happened and the previous one is `reportInterval` old.
    public mutating func report(now: UInt64) -> Report? {
        guard let due = reportDue, now >= due else { return nil }
        defer {
            failed = 0
            refused = 0
            lastReport = now
        }
        return Report(errno: lastErrno, failed: failed, refused: refused)
    }

    /// What is left to report when the socket closes, interval or not.
    public mutating func finalReport() -> Report? {
        report(now: reportDue ?? 0)
    }

    /// When a report is waiting for the interval to pass: the time to call `report` again; nil when none waits.
    public var reportDue: UInt64? {
        guard failed + refused > 0 else { return nil }
        return lastReport.map { $0 + Self.reportInterval } ?? 0
    }
}
