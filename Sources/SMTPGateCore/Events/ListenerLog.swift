/// Lines about the listener rather than one session: its failing accepts, and whether the open-files
/// limit can serve its `max_connections`. Fields in alphabetical order, as in the daemon's other lines.
public enum ListenerLog {
    /// Rate-limited: one line sums up the failures since the previous one on the same listening socket.
    public static func acceptFailed(listener: String, _ r: AcceptFailures.Report) -> LogRecord {
        LogRecord(.warning, "accept_failed", [
            ("error", .text(LogEscape.escape(errnoText(r.errno)))), ("failed", .int(r.failed)),
            ("listener", .text(listener)), ("refused", .int(r.refused)),
        ])
    }

    public static func descriptorLimit(_ b: DescriptorBudget) -> LogRecord {
        LogRecord(.warning, "descriptor_limit", [
            ("fits", .int(b.fits)), ("max_connections", .int(b.maxConnections)), ("needed", .int(b.needed)),
            ("nofile", .int(b.limit)),
        ])
    }
}
