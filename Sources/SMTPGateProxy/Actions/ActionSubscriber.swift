import SMTPGateCore

/// Runs `action_script` for each finding, with smtp-gated's variables. A finding whose cause locks the client
/// (`lock_on`) runs it when the lock is made instead, once per lock, as smtp-gated does.
struct ActionSubscriber: ProxyEventSubscriber {
    let runner: ActionRunner
    let locking: LockSettings

    func receive(_ event: ProxyEvent) -> ProxyEvent? {
        switch event {
        case .found(let c, let f):
            if c.facts.lockKey != nil, let cause = f.kind.lockCause, locking.locks(cause) { return nil }
            // Without a lock to bound it, a limited client would start a script per refused command.
            if case .rateLimit = f.kind { return nil }
            runner.run(Self.actionEvent(c, f), session: c.id)
        case .locked(let c?, let lock, _, let f?):
            var e = Self.actionEvent(c, f)
            e.lockFile = lock.key.description
            e.lockDuration = lock.expires.map { Int(($0 - lock.created).rounded()) } ?? -1
            runner.run(e, session: c.id)
        default:
            break
        }
        return nil
    }

    static func actionEvent(_ c: SessionContext, _ f: Finding) -> ActionEvent {
        let found: ActionEvent.Found
        var virus: String?
        var score: Double?
        switch f.kind {
        case .virus(let name): (found, virus) = (.virus, name)
        case .spam(let s): (found, score) = (.spam, s)
        case .maxHost: found = .maxHost
        case .maxIdent: found = .maxIdent
        case .sizeLimit: found = .sizeLimit
        case .rateLimit: found = .rateLimit
        case .dnsbl: found = .dnsbl
        case .earlyTalk: found = .earlyTalk
        case .regex: found = .regex
        case .spf: found = .spf
        }
        let p = c.facts
        return ActionEvent(
            found: found, virusName: virus, spamScore: score,
            sourceIP: p.clientIP ?? "", sourcePort: p.clientPort,
            targetIP: p.destinationIP ?? "", targetPort: p.destinationPort,
            localIP: p.localIP ?? "", localPort: p.localPort, ident: p.ident, helo: f.helo, mailFrom: f.mailFrom,
            recipients: f.recipients, size: f.size, transaction: f.transaction, spoolName: f.spoolName,
            sessionStart: p.started)
    }
}
