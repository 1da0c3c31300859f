/// Why a transaction or a session ended, as the log names it (`why=` on a transaction, `reason=` on close).
/// Typed, so subscribers act on a cause (a size-limit refusal runs the action script) without comparing text.
public enum EndReason: String, Sendable, Equatable, CaseIterable {
    // The client's doing
    case quit, rset, helo
    case newMail = "new_mail"
    case clientClosed = "client_closed"
    // The destination's
    case mailRejected = "mail_rejected"
    case serverClosed = "server_closed"
    case serverTimeout = "server_timeout"
    case serverProtocolError = "server_protocol_error"
    case destinationLost = "destination_lost"
    // The proxy's: timeouts and limits
    case idleTimeout = "idle_timeout"
    case sessionTimeout = "session_timeout"
    case directTimeout = "direct_timeout"
    case shutdown
    case takeoverLimit = "takeover_limit"
    case sizeLimit = "size_limit"
    case bareNewline = "bare_newline"
    // Abuse control
    case locked
    case rateLimit = "ratelimit"
    case dnsbl
    case earlyTalk = "earlytalk"
    case authRequired = "auth_required"
    case regex
    case regexFailed = "regex_failed"
    /// A Postfix-style restriction list refused the command.
    case restriction
    /// `destination_restrictions` refused where the client was going.
    case destination
    case spf
    // The scanners'
    case virus, spam
    case spoolError = "spool_error"
    case scanError = "scan_error"
    // Refused before the dialogue
    case maxConnections = "max_connections"
    case maxPerHost = "max_per_host"
    case maxPerIdent = "max_per_ident"
    case maxLoad = "max_load"
    case lookupFailed = "lookup_failed"
    case loop
    case connectFailed = "connect_failed"
}
