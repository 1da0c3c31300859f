import SMTPGateCore

/// Counts the event stream of one listener's sessions into its metrics.
struct MetricsSubscriber: ProxyEventSubscriber {
    let daemon: ProxyMetrics
    let listener: ListenerMetrics

    func receive(_ event: ProxyEvent) -> ProxyEvent? {
        switch event {
        case .refused(_, let refusal):
            listener.refusals.increment(refusal.why.rawValue)
            if case .rateLimited(let e) = refusal { listener.rateLimitHits.increment(e.kind.rawValue) }
        case .session(_, .transaction(let t)) where t.number != nil:
            // A MAIL the MTA refused began no transaction (its reply is counted nowhere else either).
            listener.transactions.increment(ReplyClass.of(t.resultCode))
        case .session(_, .replied(.rcpt, let code)):
            listener.recipients.increment(ReplyClass.of(code))
        case .session(_, .limitReached(let limit, _)):
            listener.limitHits.increment(limit)
        case .scanned(_, _, let report, let policy):
            daemon.scans.increment(report.scanner.rawValue, Self.result(report, policy))
            daemon.scanTimer(report.scanner).record(seconds: report.seconds)
        case .commandRefused(_, let r):
            if r.warning { listener.policyWarnings.increment() } else { listener.commandRefusals.increment(Self.command(r.point)) }
        case .warned:
            listener.policyWarnings.increment()
        case .rateLimited(_, let e):
            listener.rateLimitHits.increment(e.kind.rawValue)
        case .locked(_, let lock, _, _):
            daemon.locksCreated.increment(lock.cause.rawValue)
        case .closed(_, let totals):
            listener.sessions.increment(totals.closedBy)
            listener.bytesFromClient.increment(by: Int64(totals.bytesIn))
            listener.bytesToClient.increment(by: Int64(totals.bytesOut))
        default:
            break
        }
        return nil
    }

    /// A closed set: a virus's name or a score would make one series per value.
    static func result(_ report: ScanReport, _ policy: ScanPolicy) -> String {
        switch report.result {
        case .clean: return "clean"
        case .virus: return "virus"
        case .score(let s): return policy.isSpam(s) ? "spam" : "ham"
        case .skipped: return "skipped"
        case .failed: return "failed"
        }
    }

    static func command(_ point: PolicyPoint) -> String {
        switch point {
        case .hello: return "helo"
        case .mail: return "mail"
        case .rcpt: return "rcpt"
        case .data: return "data"
        case .endOfData: return "end_of_data"
        }
    }
}
