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
    /// `policy_mode warn`: this refusal would have been made; the connection goes on.
    case warned(SessionContext, Refusal)
    /// `destination_restrictions` sent the session to another MTA (`to`, ADDR:PORT) than the client asked for.
    case redirected(SessionContext, to: String, rule: String)
    /// The sender's SPF record was checked at MAIL (`spf`).
    case spfChecked(SessionContext, SPFVerdict)
    /// An access map's WARN or INFO action matched at this command.
    case policyNote(SessionContext, PolicyPoint, RestrictionNote)
    /// The proxy's policy refused a command (the session goes on).
    case commandRefused(SessionContext, CommandRefusal)
    /// A rate limit refused a command (at connect it is a `refused`).
    case rateLimited(SessionContext, RateExceeded)
    /// A new lock: from a session's finding (with its context) or by hand (`source` says who).
    case locked(SessionContext?, ClientLock, source: String, finding: Finding?)
    case unlocked(ClientLock, source: String)
    case closed(SessionContext, SessionLog.Totals)
}

extension ProxyEvent {
    /// The session the event is about; nil for a lock change made by hand.
    public var context: SessionContext? {
        switch self {
        case .opened(let c), .refused(let c, _), .session(let c, _), .scanned(let c, _, _, _), .spoolFailed(let c, _),
             .found(let c, _), .warned(let c, _), .redirected(let c, _, _), .spfChecked(let c, _), .policyNote(let c, _, _),
             .commandRefused(let c, _), .rateLimited(let c, _), .closed(let c, _):
            return c
        case .locked(let c, _, _, _): return c
        case .unlocked: return nil
        }
    }
}

/// One consumer of the event stream. Called on the publishing session's event loop: it must not block.
/// It may answer with an event of its own (a finding became a lock), published to all after this one.
public protocol ProxyEventSubscriber: Sendable {
    func receive(_ event: ProxyEvent) -> ProxyEvent?
}

/// The subscribers a session publishes to, in order (the log first, so a line precedes what it causes).
public struct ProxyEventBus: Sendable {
    public var subscribers: [any ProxyEventSubscriber]

    public init(_ subscribers: [any ProxyEventSubscriber]) {
        self.subscribers = subscribers
    }

    public func publish(_ event: ProxyEvent) {
        // Bounded: a follow-up's own follow-ups go one level deeper at most (a lock causes nothing further).
        // Most events cause none: they are handed on without being queued (an empty array allocates nothing).
        var next: [ProxyEvent] = []
        for s in subscribers {
            if let f = s.receive(event) { next.append(f) }
        }
        var rounds = 1
        while !next.isEmpty, rounds < 3 {
            var after: [ProxyEvent] = []
            for e in next {
                for s in subscribers {
                    if let f = s.receive(e) { after.append(f) }
                }
            }
            next = after
            rounds += 1
        }
    }
}
