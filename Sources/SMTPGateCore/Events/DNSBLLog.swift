/// Lines about the blocklists themselves rather than one session.
public enum DNSBLLog {
    /// A zone could not be asked (its lookups count nothing); said at most once a minute per zone.
    public static func error(zone: String, _ failure: DNSFailure, suppressed: Int) -> LogRecord {
        LogRecord(.warning, "dnsbl_error", [
            ("zone", .text(LogEscape.escape(zone))), ("error", .text(LogEscape.escape(failure.description))),
            ("suppressed", .int(suppressed)),
        ])
    }
}
