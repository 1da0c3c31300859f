#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import NIOConcurrencyHelpers
import NIOCore
import SMTPGateCore

/// The running helper: starts the server, logs `start`, handles the signals (USR1 counters, HUP reopens
/// the log file, TERM/INT stop), logs `stop` with the final counters.
public final class HelperDaemon: @unchecked Sendable {
    public static let version = "0.1.0"

    private let server: HelperServer
    private let log: HelperLogEmitter
    private let reopenLog: @Sendable () -> Void
    private let signalQueue = DispatchQueue(label: "smtpgate-helper.signals")
    private var signalSources: [DispatchSourceSignal] = []
    private let stopped = DispatchSemaphore(value: 0)

    public init(server: HelperServer, log: @escaping HelperLogEmitter, reopenLog: @escaping @Sendable () -> Void = {}) {
        self.server = server
        self.log = log
        self.reopenLog = reopenLog
    }

    /// Runs until SIGTERM or SIGINT. Throws on start-up failure (nothing is left running then).
    public func run() throws {
        // Ignored before the server starts, so a signal that arrives early is not lost to the default action.
        for sig in [SIGHUP, SIGTERM, SIGINT, SIGPIPE, SIGUSR1, SIGUSR2] { signal(sig, SIG_IGN) }
        let bound = try server.start()
        let c = server.configuration
        log(LogRecord(.info, "start", [
            ("version", .text(Self.version)),
            ("listen", .text(bound.map(HelperServer.show).joined(separator: ","))),
            ("allow", .text(c.policy.allow.description)),
            ("v2", .text(c.policy.key == nil ? "off" : "on")),
            ("legacy", .text(c.policy.legacySecret == nil ? "off" : (c.policy.legacySecret == 0 ? "on,no-secret" : "on,secret"))),
            ("window", .int(Int(c.policy.window))),
            ("workers", .int(c.workers)),
            ("max_pending", .int(c.maxPending)),
        ]))
        installSignals()
        stopped.wait()
        signalSources.forEach { $0.cancel() }
        server.stop()
        log(LogRecord(.info, "stop", server.counters.snapshot.fields))
    }

    /// Stops `run` from another thread (tests).
    public func requestStop() {
        stopped.signal()
    }

    private func installSignals() {
        let usr1 = DispatchSource.makeSignalSource(signal: SIGUSR1, queue: signalQueue)
        usr1.setEventHandler { [server] in server.logCounters() }
        let hup = DispatchSource.makeSignalSource(signal: SIGHUP, queue: signalQueue)
        hup.setEventHandler { [reopenLog] in reopenLog() }
        let stops: [DispatchSourceSignal] = [SIGTERM, SIGINT].map { sig in
            let s = DispatchSource.makeSignalSource(signal: sig, queue: signalQueue)
            s.setEventHandler { [stopped] in stopped.signal() }
            return s
        }
        signalSources = [usr1, hup] + stops
        signalSources.forEach { $0.resume() }
    }
}
