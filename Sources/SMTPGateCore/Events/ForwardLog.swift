/// The one line a `[forward]` connection leaves when it ends, refused or relayed: the real client, the
/// listener, the destination, bytes each way, duration and rinetd's result name.
public enum ForwardLog {
    /// rinetd's names where rinetd has the case ("local" is the destination side, "remote" the client),
    /// SMTPGate's own for what rinetd does not do (limits, locks, lookups, timeouts).
    public enum Result: String, Sendable, CaseIterable {
        /// The destination closed first.
        case doneLocalClosed = "done-local-closed"
        /// The client closed first.
        case doneRemoteClosed = "done-remote-closed"
        /// Allow rules exist and none matched the client.
        case notAllowed = "not-allowed"
        /// A deny rule matched the client.
        case denied
        /// The destination could not be connected.
        case connectFailed = "local-connect-failed"
        case locked
        case tooManyConnections = "too-many-connections"
        case tooManyFromHost = "too-many-from-host"
        /// The destination could not be learnt (netfilter, helper).
        case lookupFailed = "lookup-failed"
        /// The destination is this proxy's own listening port: relaying would connect to itself.
        case loop
        /// Nothing moved either way for `timeout_idle`.
        case timeout
        /// Still open when the drain's `shutdown_timeout` ran out.
        case shutdown
    }

    public struct Connection: Sendable {
        public var session: String
        public var listener: String
        public var client: String
        public var natSource: String?
        public var destination: String
        public var bytesIn = 0
        public var bytesOut = 0
        public var duration = 0.0
        public var result = Result.doneRemoteClosed
        /// `denied`: the rule that matched; `global` says whether it is a global rule.
        public var pattern: String?
        public var global: Bool?
        /// Why a connect or lookup failed; escaped already.
        public var error: String?

        public init(session: String, listener: String, client: String, destination: String) {
            self.session = session
            self.listener = listener
            self.client = client
            self.destination = destination
        }
    }

    public static func connection(_ c: Connection) -> LogRecord {
        var fields: [(String, LogRecord.Value)] = [
            ("session", .text(c.session)), ("listener", .text(c.listener)), ("client", .text(c.client)),
        ]
        if let nat = c.natSource { fields.append(("nat_source", .text(nat))) }
        fields += [
            ("dest", .text(c.destination)), ("bytes_in", .int(c.bytesIn)), ("bytes_out", .int(c.bytesOut)),
            ("duration", .seconds(c.duration)), ("result", .text(c.result.rawValue)),
        ]
        if let p = c.pattern { fields.append(("pattern", .text(LogEscape.escape(p)))) }
        if let g = c.global { fields.append(("rule", .text(g ? "global" : "forward"))) }
        if let e = c.error { fields.append(("error", .text(e))) }
        let refused: Set<Result> = [.notAllowed, .denied, .locked, .tooManyConnections, .tooManyFromHost, .loop]
        return LogRecord(refused.contains(c.result) ? .notice : .info, "forward", fields)
    }
}
