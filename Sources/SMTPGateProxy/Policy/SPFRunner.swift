import NIOCore
import SMTPGateCore

/// `spf` at MAIL: check_host() for the sender against the address `spf` names, its DNS questions asked of
/// the daemon's resolver one after another (answers are cached); never fails.
struct SPFRunner {
    let mode: SPFMode
    let resolver: Resolver?
    let clientIP: [UInt8]?
    let fixedIP: [UInt8]?
    /// The address the MTA sees this session come from (`spf outgoing`), once the upstream is connected.
    let outgoingIP: () -> [UInt8]?
    let logOnly: Bool
    let receivedHeader: Bool
    let hostName: String

    /// Questions one check may ask at most: above what the RFC's limits allow (10 lookups, 10 MX names
    /// each, the TXT of every include), so only a resolver gone wrong reaches it.
    static let maxQuestions = 256

    func address() -> [UInt8]? {
        switch mode {
        case .off: return nil
        case .incoming: return clientIP
        case .outgoing: return outgoingIP()
        case .fixed: return fixedIP
        }
    }

    func check(sender: String, helo: String, on loop: EventLoop) -> EventLoopFuture<SPFVerdict> {
        guard let ip = address() else {
            return loop.makeSucceededFuture(SPFVerdict(result: .none, reason: "no address to check", ip: "-", sender: sender, helo: helo))
        }
        let promise = loop.makePromise(of: SPFVerdict.self)
        let shown = AddressBytes.format(AddressBytes.unmapped(ip))
        step(SPFCheck(ip: ip, sender: sender, helo: helo), asked: 0, loop: loop) { result, reason in
            promise.succeed(SPFVerdict(result: result, reason: reason, ip: shown, sender: sender, helo: helo))
        }
        return promise.futureResult
    }

    private func step(_ check: SPFCheck, asked: Int, loop: EventLoop, done: @escaping (SPFResult, String) -> Void) {
        var c = check
        switch c.run() {
        case .done(let r, let why):
            done(r, why)
        case .lookup(let q):
            guard let resolver, asked < Self.maxQuestions else {
                return done(resolver == nil ? .temperror : .permerror, resolver == nil ? "no resolver" : "too many DNS questions")
            }
            resolver.lookup(q.name, q.type, on: loop).whenSuccess { answer in
                c.provide(q, answer)
                step(c, asked: asked + 1, loop: loop, done: done)
            }
        }
    }
}
