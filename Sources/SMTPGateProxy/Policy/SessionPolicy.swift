import NIOCore
import SMTPGateCore

/// The policies of one session in the order they are asked: the authentication gate first (a client
/// refused for it has not used up a rate), then abuse control. The first that does not relay decides.
struct SessionPolicy: CommandPolicy {
    var gate: AuthGate
    var abuse: AbusePolicy?
    /// A listing held against an unauthenticated MAIL, for the event stream (the session reports it once).
    /// Called while the machine decides: it must not touch the machine (the state is what it may know).
    let listed: (DNSBLVerdict, PolicyState) -> Void
    /// Every other refusal of the gate, for the event stream.
    let refused: (CommandRefusal) -> Void

    var isEmpty: Bool { gate.isOpen && abuse == nil }

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
        return abuse?.decide(point) ?? .relay
    }

    func resolve(_ point: PolicyPoint, _ state: PolicyState, on loop: EventLoop) -> EventLoopFuture<PolicyDecision> {
        loop.makeSucceededFuture(decide(point, state))
    }
}
