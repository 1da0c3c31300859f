import NIOCore
import SMTPGateCore

/// The points where a connection is admitted: once accepted (the peer is known), once its origin is known
/// (the real client and the destination), and before the MTA's greeting reaches the client. Checks run in
/// order; the first refusal wins, and it takes the one refusal path of the stage (the listener's or the
/// session's) with its reply from `ProxyReplies`.
enum AdmissionStage: Sendable {
    case accepted
    case originKnown
    /// Started as the upstream connection is made, so what they wait for (DNS) overlaps the connect;
    /// the greeting is held until they answer.
    case beforeGreeting
}

/// What admission knows of a connection: the session (not started yet at `.accepted`) and, from
/// `.originKnown` on, its origin.
struct AdmissionRequest {
    let session: RelaySession
    let origin: Origin?
    /// Whom locks and rate limits count: the real client, once known (nil for a NAT source).
    var keys: (lock: ClientKey, rate: ClientKey)? = nil
    /// At accept, where the peer is the client itself (not a router asking on its customers' behalf).
    var peerKeys: (lock: ClientKey, rate: ClientKey)? = nil
}

enum AdmissionAnswer {
    case pass
    case refuse(Refusal)
    /// An asynchronous check (a DNS list, a shared store): the pipeline waits for its answer, on the
    /// session's event loop. A failed future counts as `.pass`: a check that cannot answer must say so itself.
    case wait(EventLoopFuture<AdmissionAnswer>)
}

/// One check at one stage. Generic over what it is asked about so the pipeline can be tested on its own.
struct AdmissionCheck<Request> {
    let stage: AdmissionStage
    let check: (Request) -> AdmissionAnswer
}

struct AdmissionPipeline<Request> {
    let checks: [AdmissionCheck<Request>]
    /// `policy_mode warn`: a policy refusal is reported here and the next check runs, as if it had passed.
    var warn: ((Request, Refusal) -> Void)? = nil

    /// Calls `done` with the refusal, or nil to admit; synchronously when no check had to wait.
    func run(_ stage: AdmissionStage, _ request: Request, done: @escaping (Refusal?) -> Void) {
        run(stage, request, from: 0, done: done)
    }

    private func run(_ stage: AdmissionStage, _ request: Request, from start: Int,
                     done: @escaping (Refusal?) -> Void) {
        var i = start
        while i < checks.count {
            let check = checks[i]
            i += 1
            guard check.stage == stage else { continue }
            switch check.check(request) {
            case .pass:
                continue
            case .refuse(let refusal):
                if let warn, refusal.isPolicy {
                    warn(request, refusal)
                    continue
                }
                done(refusal)
                return
            case .wait(let answer):
                let next = i
                answer.whenComplete { [warn] result in
                    if case .success(.refuse(let refusal)) = result {
                        guard let warn, refusal.isPolicy else { return done(refusal) }
                        warn(request, refusal)
                        run(stage, request, from: next, done: done)
                    } else {
                        run(stage, request, from: next, done: done)
                    }
                }
                return
            }
        }
        done(nil)
    }
}
