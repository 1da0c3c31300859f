import NIOCore
import SMTPGateCore

/// A session's restriction lists: at RCPT the client, HELO, sender and recipient lists (Postfix's
/// `smtpd_delay_reject yes`), at DATA the data list. An evaluation that needs no DNS answers at once;
/// one that does is asked, and its lookups go to the resolver one after another (their answers are cached).
struct RestrictionRunner {
    let restrictions: [RestrictionStage: [Restriction]]
    let mode: RestrictionEvaluation.Mode
    let resolver: Resolver?
    let maps: AccessMapSet
    let services: PolicyServiceClients?
    /// Postfix's policy-request attributes the session knows.
    let instance: String
    let clientPort: Int?
    let serverAddress: String
    let serverPort: Int?
    let clientAddress: [UInt8]
    let clientText: String
    let inMynetworks: Bool

    /// Questions one command may ask at most; past it they are answered as failed lookups (a blocklist
    /// counts nothing, an unknown-domain check defers).
    static let maxLookups = 64

    init?(config: Config, resolver: Resolver?, maps: AccessMapSet, services: PolicyServiceClients?, origin: Origin,
          session: String) {
        guard !config.restrictions.isEmpty, let address = origin.client.ipBytes else {
            return nil
        }
        restrictions = config.restrictions
        mode = config.policyMode
        self.resolver = resolver
        self.maps = maps
        self.services = services
        instance = session
        clientPort = origin.client.port
        serverAddress = origin.destination.normalisedIP ?? ""
        serverPort = origin.destination.port
        let client = AddressBytes.unmapped(address)
        clientAddress = client
        clientText = AddressBytes.format(client)
        inMynetworks = config.mynetworks.contains { $0.contains(client) }
    }

    func evaluation(_ point: PolicyPoint, _ state: PolicyState) -> RestrictionEvaluation? {
        let stages: [RestrictionStage]
        var recipient: String?
        switch point {
        case .rcpt(let to):
            stages = [.client, .helo, .sender, .recipient]
            recipient = RegexRule.unbracketed(to)
        case .data:
            stages = [.data]
        case .hello, .mail, .endOfData:
            return nil
        }
        let lists = stages.compactMap { s in restrictions[s].map { (s, $0) } }
        guard !lists.isEmpty else { return nil }
        let facts = RestrictionFacts(clientAddress: clientAddress, clientText: clientText, helo: state.helo,
                                     sender: state.mailFrom.map(RegexRule.unbracketed), recipient: recipient,
                                     authenticated: state.authenticated, inMynetworks: inMynetworks,
                                     pipelinedAhead: state.pipelinedAhead)
        var f = facts
        f.ehlo = state.ehlo
        f.recipientCount = state.recipients
        f.instance = "\(instance).\(state.transactions)"
        f.clientPort = clientPort
        f.serverAddress = serverAddress
        f.serverPort = serverPort
        return RestrictionEvaluation(lists, facts: f, mode: mode, maps: maps)
    }

    /// Runs the evaluation to its end on `loop`, asking the resolver whatever it needs; never fails.
    func finish(_ evaluation: RestrictionEvaluation, on loop: EventLoop) -> EventLoopFuture<RestrictionOutcome> {
        let promise = loop.makePromise(of: RestrictionOutcome.self)
        step(evaluation, lookups: 0, loop: loop, promise: promise)
        return promise.futureResult
    }

    private func step(_ evaluation: RestrictionEvaluation, lookups: Int, loop: EventLoop,
                      promise: EventLoopPromise<RestrictionOutcome>) {
        var e = evaluation
        switch e.run() {
        case .done(let outcome):
            promise.succeed(outcome)
        case .policy(let id, let settings, let request):
            guard let services else {
                e.provide(policy: id, .failed(reason: "no policy service client"))
                return step(e, lookups: lookups + 1, loop: loop, promise: promise)
            }
            services.client(for: settings).query(request, on: loop).whenSuccess { answer in
                e.provide(policy: id, answer)
                step(e, lookups: lookups + 1, loop: loop, promise: promise)
            }
        case .lookup(let q):
            guard let resolver, lookups < Self.maxLookups else {
                e.provide(q, .failure(.resolver(resolver == nil ? "no resolver" : "too many lookups")))
                return step(e, lookups: lookups + 1, loop: loop, promise: promise)
            }
            resolver.lookup(q.name, q.type, on: loop).whenSuccess { answer in
                e.provide(q, answer)
                step(e, lookups: lookups + 1, loop: loop, promise: promise)
            }
        }
    }
}
