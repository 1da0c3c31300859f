import SMTPGateCore

/// Runs `action_script` for each finding, with smtp-gated's variables.
struct ActionSubscriber: ProxyEventSubscriber {
    let runner: ActionRunner

    func receive(_ event: ProxyEvent) {
        guard case .found(let c, let f) = event else { return }
        runner.run(Self.actionEvent(c, f), session: c.id)
    }

    static func actionEvent(_ c: SessionContext, _ f: Finding) -> ActionEvent {
        let found: ActionEvent.Found
        var virus: String?
        var score: Double?
        switch f.kind {
        case .virus(let name): (found, virus) = (.virus, name)
        case .spam(let s): (found, score) = (.spam, s)
        case .maxHost: found = .maxHost
        case .sizeLimit: found = .sizeLimit
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
