/// Lines about abuse control as a whole rather than one session: its state store.
public enum AbuseLog {
    public static func started(path: String, locks: Int, clients: Int) -> LogRecord {
        LogRecord(.info, "state_store", [
            ("clients", .int(clients)), ("locks", .int(locks)), ("path", .text(LogEscape.escape(path))),
            ("result", .text("loaded")),
        ])
    }

    /// The store cannot be written: mail goes on deciding from memory; said at most once a minute.
    public static func storeTrouble(_ message: String) -> LogRecord {
        LogRecord(.warning, "state_store", [("error", .text(LogEscape.escape(message))), ("result", .text("failing"))])
    }
}
