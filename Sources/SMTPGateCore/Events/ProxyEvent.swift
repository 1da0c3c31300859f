/// Everything the proxy reports about a connection, typed. The relay and the listener only publish these;
/// what becomes a log line, an action script run, a lock or a counter is each subscriber's business.
public enum ProxyEvent: Sendable {
    /// The origin is known: the session goes on to its destination.
    case opened(SessionContext)
    /// The connection was refused before its dialogue began; the client got the refusal's reply.
    case refused(SessionContext, Refusal)
    /// What the session machine reported: transactions, takeover, STARTTLS, limits, protocol errors.
    case session(SessionContext, SessionEvent)
    /// One scanner's answer for one message, and the settings that judged it.
    case scanned(SessionContext, transaction: Int?, ScanReport, ScanPolicy)
    /// The spool could not hold a message (it got 451 4.3.0) or could not be kept.
    case spoolFailed(SessionContext, error: String)
    case found(SessionContext, Finding)
    case closed(SessionContext, SessionLog.Totals)
}

/// One consumer of the event stream. Called on the publishing session's event loop: it must not block.
public protocol ProxyEventSubscriber: Sendable {
    func receive(_ event: ProxyEvent)
}

/// The subscribers a session publishes to, in order (the log first, so a line precedes what it causes).
public struct ProxyEventBus: Sendable {
    public var subscribers: [any ProxyEventSubscriber]

    public init(_ subscribers: [any ProxyEventSubscriber]) {
        self.subscribers = subscribers
    }

    public func publish(_ event: ProxyEvent) {
        for s in subscribers { s.receive(event) }
    }
}
