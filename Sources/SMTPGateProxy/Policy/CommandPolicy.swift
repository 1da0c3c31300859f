import NIOCore
import SMTPGateCore

/// A session's policy at the machine's decision points: `decide` answers at once (or says `.ask`), and
/// `resolve` gives the answer to a question asked, later, on the session's loop.
protocol CommandPolicy {
    func decide(_ point: PolicyPoint, _ state: PolicyState) -> PolicyDecision
    func resolve(_ point: PolicyPoint, _ state: PolicyState, on loop: EventLoop) -> EventLoopFuture<PolicyDecision>
}

extension AbusePolicy: CommandPolicy {
    func decide(_ point: PolicyPoint, _ state: PolicyState) -> PolicyDecision { decide(point) }

    /// Abuse control decides from memory and never asks; asked anyway, it decides as it would have.
    func resolve(_ point: PolicyPoint, _ state: PolicyState, on loop: EventLoop) -> EventLoopFuture<PolicyDecision> {
        loop.makeSucceededFuture(decide(point))
    }
}
