import NIOCore
import SMTPGateCore

/// The policies of one session in the order they are asked: the authentication gate first (a client
/// refused for it has not used up a rate), then `regex_*`, then abuse control. The first that does not
/// relay decides.
struct SessionPolicy: CommandPolicy {
    var gate: AuthGate
    var regex: RegexPolicy?
    /// `auth_skip regex`: an authenticated client's commands are not matched.
    var regexSkippedWhenAuthenticated = false
    var restrictions: RestrictionRunner?
    var abuse: AbusePolicy?
    /// `spf` at MAIL (asked: it waits for DNS); `auth_skip spf` spares an authenticated client.
    var spf: SPFRunner?
    var spfSkippedWhenAuthenticated = false
    /// Each SPF check's outcome, for the log.
    var spfChecked: (SPFVerdict) -> Void = { _ in }
    /// A listing held against an unauthenticated MAIL, for the event stream (the session reports it once).
    /// Called while the machine decides: it must not touch the machine (the state is what it may know).
    let listed: (DNSBLVerdict, PolicyState) -> Void
    /// Every other refusal of the gate or of a rule, for the event stream.
    let refused: (CommandRefusal) -> Void
    /// An access map's WARN or INFO, for the log.
    var noted: (PolicyPoint, RestrictionNote) -> Void = { _, _ in }
    /// A rule refused a command: `lock_on regex`, `action_script` (called while the machine decides, like `listed`).
    let found: (Finding.Kind, PolicyState) -> Void

    /// `policy_mode warn`: every refusal is published as a warning and the command goes on; nothing is
    /// reported as found (so nothing is locked).
    var warnOnly = false

    var isEmpty: Bool { gate.isOpen && regex == nil && restrictions == nil && abuse == nil && spf == nil }

    func decide(_ point: PolicyPoint, _ state: PolicyState) -> PolicyDecision {
        switch gate.verdict(point, state) {
        case .pass:
            break
        case .authRequired:
            if let d = refuse(CommandRefusal(point: point, reply: ProxyReplies.authRequired)) { return d }
        case .listed(let v):
            let reply = ProxyReplies.dnsblListedAtMail(v)
            if warnOnly {
                refused(CommandRefusal(point: point, reply: reply, rule: "dnsbl", warning: true))
            } else {
                listed(v, state)
                return .reply(reply, then: .carryOn)
            }
        }
        if let regex, !(regexSkippedWhenAuthenticated && state.authenticated) {
            let v = regex.verdict(point)
            if let reply = RegexPolicy.reply(v) {
                switch v {
                case .refuse(let rule):
                    if let d = refuse(CommandRefusal(point: point, reply: reply, rule: rule.optionName)) {
                        found(.regex(rule: rule.optionName), state)
                        return d
                    }
                case .failed(let rule, let why):
                    if let d = refuse(CommandRefusal(point: point, reply: reply, rule: rule.optionName, error: why)) { return d }
                case .pass:
                    break
                }
            }
        }
        if case .mail = point, spf != nil, !(spfSkippedWhenAuthenticated && state.authenticated) { return .ask }
        if let restrictions, var evaluation = restrictions.evaluation(point, state) {
            // Run as far as memory goes; a DNS question makes the machine ask, and `resolve` goes on.
            guard case .done(let outcome) = evaluation.run() else { return .ask }
            return report(outcome, point) ?? prepending(outcome, abuseDecision(point))
        }
        return abuseDecision(point)
    }

    /// A map's PREPEND goes with a command that is relayed.
    private func prepending(_ outcome: RestrictionOutcome, _ d: PolicyDecision) -> PolicyDecision {
        guard !outcome.prepend.isEmpty, d == .relay else { return d }
        return .prepend(outcome.prepend)
    }

    /// Publishes `r`; the decision that makes it, or nil in `policy_mode warn` (the command goes on).
    private func refuse(_ r: CommandRefusal) -> PolicyDecision? {
        var r = r
        r.warning = warnOnly
        refused(r)
        return warnOnly ? nil : .reply(r.reply, then: .carryOn)
    }

    /// Rate limits and the lock at the end of a message; in `policy_mode warn` their refusals are warnings.
    private func abuseDecision(_ point: PolicyPoint) -> PolicyDecision {
        guard let abuse else { return .relay }
        let d = abuse.decide(point)
        guard warnOnly, case .reply(let reply, _) = d else { return d }
        refused(CommandRefusal(point: point, reply: reply, rule: reply.why.rawValue, warning: true))
        return .relay
    }

    /// Only a restriction that needed DNS asks: everything before it in `decide` let the command through.
    func resolve(_ point: PolicyPoint, _ state: PolicyState, on loop: EventLoop) -> EventLoopFuture<PolicyDecision> {
        if case .mail(let from) = point, let spf, !(spfSkippedWhenAuthenticated && state.authenticated) {
            return spf.check(sender: RegexRule.unbracketed(from), helo: state.helo ?? "", on: loop).map { v in
                spfChecked(v)
                if let reply = v.reply(logOnly: spf.logOnly) {
                    if let d = refuse(CommandRefusal(point: point, reply: reply, rule: "spf \(spf.mode.rawValue)")) {
                        if v.result == .fail {
                            found(.spf(domain: v.sender.split(separator: "@").last.map(String.init) ?? v.helo), state)
                        }
                        return d
                    }
                }
                let d = abuseDecision(point)
                guard spf.receivedHeader, d == .relay else { return d }
                return .prepend([v.receivedHeader(by: spf.hostName)])
            }
        }
        guard let restrictions, let evaluation = restrictions.evaluation(point, state) else {
            return loop.makeSucceededFuture(abuseDecision(point))
        }
        return restrictions.finish(evaluation, on: loop).map { outcome in
            report(outcome, point) ?? prepending(outcome, abuseDecision(point))
        }
    }

    /// Publishes the warnings and the refusal; the decision for a refusal.
    private func report(_ outcome: RestrictionOutcome, _ point: PolicyPoint) -> PolicyDecision? {
        for n in outcome.notes { noted(point, n) }
        for w in outcome.warnings {
            refused(CommandRefusal(point: point, reply: w.reply, rule: w.rule, warning: true))
        }
        guard let hit = outcome.refusal else { return nil }
        refused(CommandRefusal(point: point, reply: hit.reply, rule: hit.rule))
        return .reply(hit.reply, then: hit.closes ? .close : .carryOn)
    }
}
