import SMTPGateCore
import SMTPGateRuntime

/// Writes the log line of each event, under the `log_helo`/`log_mail_from`/`log_rcpt_to` of the
/// configuration the session started with.
struct LogSubscriber: ProxyEventSubscriber {
    let log: EventLog
    let policy: LogPolicy

    func receive(_ event: ProxyEvent) -> ProxyEvent? {
        if var record = SessionLog.record(for: event, policy: policy) {
            record.tag = policy.tag
            log.record(record)
        }
        return nil
    }
}
