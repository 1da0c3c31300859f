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
    /// A listing held against an unauthenticated MAIL, for the event stream (the session reports it once).
    /// Called while the machine decides: it must not touch the machine (the state is what it may know).
    let listed: (DNSBLVerdict, PolicyState) -> Void
    /// Every other refusal of the gate or of a rule, for the event stream.
    let refused: (CommandRefusal) -> Void
    /// A rule refused a command: `lock_on regex`, `action_script` (called while the machine decides, like `listed`).
    let found: (Finding.Kind, PolicyState) -> Void

    var isEmpty: Bool { gate.isOpen && regex == nil && restrictions == nil && abuse == nil }

    func decide(_ point: PolicyPoint, _ state: PolicyState) -> PolicyDecision {
        switch gate.verdict(point, state) {
        case .pass:
            break
        case .authRequired:
            refused(CommandRefusal(point: point, reply: ProxyReplies.authRequired))
            return .reply(ProxyReplies.authRequired, then: .carryOn)
        case .listed(let v):
            listed(v, state)
            return .reply(ProxyReplies.dnsblListedAtMail(v), then: .carryOn)
        }
        if let regex, !(regexSkippedWhenAuthenticated && state.authenticated) {
            let v = regex.verdict(point)
            if let reply = RegexPolicy.reply(v) {
                switch v {
                case .refuse(let rule):
                    refused(CommandRefusal(point: point, reply: reply, rule: rule.optionName))
                    found(.regex(rule: rule.optionName), state)
                case .failed(let rule, let why):
                    refused(CommandRefusal(point: point, reply: reply, rule: rule.optionName, error: why))
                case .pass:
                    break
                }
                return .reply(reply, then: .carryOn)
            }
        }
        if let restrictions, var evaluation = restrictions.evaluation(point, state) {
            // Run as far as memory goes; a DNS question makes the machine ask, and `resolve` goes on.
            guard case .done(let outcome) = evaluation.run() else { return .ask }
            if let refusal = report(outcome, point) { return refusal }
        }
        return abuse?.decide(point) ?? .relay
    }

    /// Only a restriction that needed DNS asks: everything before it in `decide` let the command through.
    func resolve(_ point: PolicyPoint, _ state: PolicyState, on loop: EventLoop) -> EventLoopFuture<PolicyDecision> {
        guard let restrictions, let evaluation = restrictions.evaluation(point, state) else {
            return loop.makeSucceededFuture(abuse?.decide(point) ?? .relay)
        }
        return restrictions.finish(evaluation, on: loop).map { outcome in
            report(outcome, point) ?? abuse?.decide(point) ?? .relay
        }
    }

    /// Publishes the warnings and the refusal; the decision for a refusal.
    private func report(_ outcome: RestrictionOutcome, _ point: PolicyPoint) -> PolicyDecision? {
        for w in outcome.warnings {
            refused(CommandRefusal(point: point, reply: w.reply, rule: w.rule, warning: true))
        }
        guard let hit = outcome.refusal else { return nil }
        refused(CommandRefusal(point: point, reply: hit.reply, rule: hit.rule))
        return .reply(hit.reply, then: .carryOn)
    }
}
