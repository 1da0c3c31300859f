/// The log lines of `action_script` runs. One place decides their names and fields.
public enum ActionLog {
    /// How a run ended.
    public enum Outcome: Sendable, Equatable {
        case exited(Int)
        case signalled(Int)
        /// Killed, with its process group, after `timeout_action`.
        case timedOut
        /// Reaped by someone else (SIGCHLD ignored): the status is lost.
        case unknown
    }

    public static func finished(session: String, found: ActionEvent.Found, script: String, outcome: Outcome,
                                time: Double) -> LogRecord {
        var fields = head(session: session, found: found, script: script)
        let level: LogRecord.Level
        switch outcome {
        case .exited(let code):
            fields.append(("exit", .int(code)))
            level = code == 0 ? .notice : .warning
        case .signalled(let signal):
            fields.append(("signal", .int(signal)))
            level = .warning
        case .timedOut:
            fields.append(("error", .text("timeout")))
            level = .warning
        case .unknown:
            fields.append(("exit", .text("unknown")))
            level = .warning
        }
        fields.append(("time", .seconds(time)))
        return LogRecord(level, "action", fields)
    }

    /// The script could not be started (not executable, missing, no thread to wait for it…).
    public static func failed(session: String, found: ActionEvent.Found, script: String, error: String) -> LogRecord {
        LogRecord(.error, "action_failed",
                  head(session: session, found: found, script: script) + [("error", .text(LogEscape.escape(error)))])
    }

    /// The event was not run: every slot busy and the queue full.
    public static func dropped(session: String, found: ActionEvent.Found, script: String, reason: String) -> LogRecord {
        LogRecord(.warning, "action_dropped",
                  head(session: session, found: found, script: script) + [("reason", .text(reason))])
    }

    private static func head(session: String, found: ActionEvent.Found, script: String) -> [(String, LogRecord.Value)] {
        [("session", .text(session)), ("found", .text(found.rawValue)), ("script", .text(LogEscape.escape(script)))]
    }
}
