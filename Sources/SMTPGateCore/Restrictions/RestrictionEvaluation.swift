/// Postfix's restriction lists evaluated for one command, as a step machine: `run` goes as far as it can
/// and either finishes or names the DNS question it needs; the shell asks the resolver, `provide`s the
/// answer and runs again. Each list ends at its first permit (the next list still runs) or refusal;
/// `defer_if_permit` is remembered and made at the end if nothing refused.
public struct RestrictionEvaluation: Sendable {
    public struct Question: Hashable, Sendable {
        public var name: String
        public var type: DNSType
    }

    public enum Step: Sendable, Equatable {
        case lookup(Question)
        /// Ask this policy service; give its answer to `provide(policy:_:)` with the same `id`.
        case policy(id: Int, PolicyServiceSettings, PolicyRequest)
        case done(RestrictionOutcome)
    }

    /// Whether a refusal is made (`enforce`) or only logged (`warn`).
    public enum Mode: String, Sendable, CaseIterable {
        case enforce, warn
    }

    private let lists: [(stage: RestrictionStage, entries: [Restriction])]
    private let facts: RestrictionFacts
    private let mode: Mode
    private var list = 0
    private var entry = 0
    private var warnNext = false
    private var deferIfPermit: RestrictionHit?
    private var deferIfReject = false
    private var warnings: [RestrictionHit] = []
    private var notes: [RestrictionNote] = []
    private var prepend: [String] = []
    private let maps: AccessMapSet
    private var answers: [Question: DNSAnswer] = [:]
    private var policyAnswers: [Int: PolicyServiceAnswer] = [:]
    /// Questions asked at most: a list of 256 entries needs three each at most (MX, A, AAAA).
    static let maxQuestions = 1024

    public init(_ lists: [(RestrictionStage, [Restriction])], facts: RestrictionFacts, mode: Mode = .enforce,
                maps: AccessMapSet = AccessMapSet()) {
        self.lists = lists.map { (stage: $0.0, entries: $0.1) }
        self.facts = facts
        self.mode = mode
        self.maps = maps
    }

    public mutating func provide(_ q: Question, _ a: DNSAnswer) {
        guard answers.count < Self.maxQuestions else { return }
        answers[q] = a
    }

    public mutating func provide(policy id: Int, _ a: PolicyServiceAnswer) {
        policyAnswers[id] = a
    }

    public mutating func run() -> Step {
        while list < lists.count {
            let (stage, entries) = lists[list]
            guard entry < entries.count else {
                next(list: true)
                continue
            }
            let r = entries[entry]
            switch evaluate(r, stage) {
            case .need(let q):
                if answers.count >= Self.maxQuestions { return .done(finish(refusal: nil)) }
                return .lookup(q)
            case .ask(let settings, let request):
                return .policy(id: position, settings, request)
            case .noteThen(let n, let then):
                notes.append(n)
                policyAnswers[position] = .action(then)
            case .dunno:
                warnNext = false
                next(list: false)
            case .warnNext:
                warnNext = true
                next(list: false)
            case .permit:
                warnNext = false
                next(list: true)
            case .deferIfPermit(let hit):
                if deferIfPermit == nil { deferIfPermit = hit }
                warnNext = false
                next(list: false)
            case .deferIfReject:
                deferIfReject = true
                warnNext = false
                next(list: false)
            case .note(let n):
                notes.append(n)
                warnNext = false
                next(list: false)
            case .prepend(let header):
                if prepend.count < 32, !prepend.contains(header) { prepend.append(header) }
                warnNext = false
                next(list: false)
            case .refuse(var hit):
                if deferIfReject, hit.reply.code >= 500, !hit.closes {
                    hit.reply = Self.temporary(hit.reply)
                }
                if warnNext || mode == .warn {
                    warnings.append(hit)
                    warnNext = false
                    next(list: false)
                } else {
                    return .done(finish(refusal: hit))
                }
            }
        }
        if let hit = deferIfPermit {
            if mode == .warn {
                warnings.append(hit)
            } else {
                return .done(finish(refusal: hit))
            }
        }
        return .done(finish(refusal: nil))
    }

    private mutating func next(list nextList: Bool) {
        if nextList {
            list += 1
            entry = 0
        } else {
            entry += 1
        }
    }

    private func finish(refusal: RestrictionHit?) -> RestrictionOutcome {
        RestrictionOutcome(refusal: refusal, warnings: warnings, notes: notes, prepend: prepend)
    }

    private enum Result {
        case dunno, permit, warnNext, deferIfReject
        case deferIfPermit(RestrictionHit)
        case note(RestrictionNote)
        case prepend(String)
        case ask(PolicyServiceSettings, PolicyRequest)
        /// A service failed: log it, and act on its default action (run again to see it).
        case noteThen(RestrictionNote, String)
        case refuse(RestrictionHit)
        case need(Question)
    }

    private func evaluate(_ r: Restriction, _ stage: RestrictionStage) -> Result {
        func hit(_ code: Int, _ enhanced: String, _ text: String) -> RestrictionHit {
            RestrictionHit(stage: stage, restriction: r.text,
                           reply: PolicyReply(code: code, enhanced: enhanced, text: text, why: .restriction, named: false))
        }
        let subject = "<\(subjectText(stage))>: \(stage.subject)"
        switch r {
        case .permit:
            return .permit
        case .reject:
            return .refuse(hit(554, "5.7.1", "\(subject): Access denied"))
        case .deferAlways:
            return .refuse(hit(450, "4.7.1", "\(subject): Try again later"))
        case .deferIfPermit:
            return .deferIfPermit(hit(450, "4.7.1", "\(subject): Try again later"))
        case .deferIfReject:
            return .deferIfReject
        case .warnIfReject:
            return .warnNext
        case .permitMynetworks:
            return facts.inMynetworks ? .permit : .dunno
        case .permitSaslAuthenticated:
            return facts.authenticated ? .permit : .dunno
        case .rejectInvalidHeloHostname:
            guard let helo = facts.helo else { return .dunno }
            return HostNames.isValidHelo(helo) ? .dunno
                : .refuse(hit(501, "5.5.2", "<\(helo)>: Helo command rejected: Invalid name"))
        case .rejectNonFqdnHeloHostname:
            guard let helo = facts.helo, HostNames.isValidHelo(helo) else { return .dunno }
            return HostNames.isFullyQualified(helo) ? .dunno
                : .refuse(hit(504, "5.5.2", "<\(helo)>: Helo command rejected: need fully-qualified hostname"))
        case .rejectNonFqdnSender:
            guard let s = facts.sender, !s.isEmpty else { return .dunno }
            return HostNames.isFullyQualifiedAddress(s) ? .dunno
                : .refuse(hit(504, "5.5.2", "<\(s)>: Sender address rejected: need fully-qualified address"))
        case .rejectNonFqdnRecipient:
            guard let rcpt = facts.recipient else { return .dunno }
            return HostNames.isFullyQualifiedAddress(rcpt) ? .dunno
                : .refuse(hit(504, "5.5.2", "<\(rcpt)>: Recipient address rejected: need fully-qualified address"))
        case .rejectUnknownSenderDomain:
            guard let s = facts.sender, let domain = HostNames.domain(of: s) else { return .dunno }
            return unknownDomain(domain, hit: { temporary in
                hit(450, "4.1.8", "<\(s)>: Sender address rejected: " + (temporary ? "Domain lookup failed" : "Domain not found"))
            })
        case .rejectUnknownRecipientDomain:
            guard let rcpt = facts.recipient, let domain = HostNames.domain(of: rcpt) else { return .dunno }
            return unknownDomain(domain, hit: { temporary in
                hit(450, "4.1.2", "<\(rcpt)>: Recipient address rejected: " + (temporary ? "Domain lookup failed" : "Domain not found"))
            })
        case .rejectUnauthPipelining:
            return facts.pipelinedAhead
                ? .refuse(hit(503, "5.5.0", "\(subject): Improper use of SMTP command pipelining")) : .dunno
        case .rejectUnknownClientHostname, .rejectUnknownReverseClientHostname:
            let (need, names) = clientNames()
            if let need { return .need(need) }
            let verified = r == .rejectUnknownClientHostname
            guard (verified ? names.name : names.reverse) == nil else { return .dunno }
            let h = hit(450, "4.7.25", "Client host rejected: cannot find your \(verified ? "" : "reverse ")hostname, [\(facts.clientText)]")
            // Postfix: a name that could not be looked up (as opposed to none) is only ever a deferral.
            return names.temporary ? .deferIfPermit(h) : .refuse(h)
        case .rejectUnknownHeloHostname:
            guard let helo = facts.helo, !helo.hasPrefix("["), HostNames.isValidHelo(helo) else { return .dunno }
            return unknownDomain(helo.lowercased(), hit: { temporary in
                hit(450, "4.7.1", "<\(helo)>: Helo command rejected: " + (temporary ? "Host lookup failed" : "Host not found"))
            })
        case .rejectRblClient(let site):
            guard let name = DNSName.reversed(facts.clientAddress, zone: site.zone) else { return .dunno }
            return listed(name, site) { hit(554, "5.7.1", "Service unavailable; Client host [\(facts.clientText)] blocked using \(site.zone)") }
        case .rejectRhsblSender(let site):
            guard let s = facts.sender, let domain = HostNames.domain(of: s) else { return .dunno }
            return listed(domain + "." + site.zone, site) {
                hit(554, "5.7.1", "Service unavailable; Sender address [\(s)] blocked using \(site.zone)")
            }
        case .checkAccess(let check, let map):
            return access(check, map, stage, r)
        case .checkPolicyService(let settings):
            return policy(settings, stage, r)
        case .rejectRhsblRecipient(let site):
            guard let rcpt = facts.recipient, let domain = HostNames.domain(of: rcpt) else { return .dunno }
            return listed(domain + "." + site.zone, site) {
                hit(554, "5.7.1", "Service unavailable; Recipient address [\(rcpt)] blocked using \(site.zone)")
            }
        }
    }

    /// check_*_access: the map's answer for the subject's keys, in access(5)'s order, as Postfix acts on it.
    private func access(_ check: Restriction.AccessCheck, _ map: String, _ stage: RestrictionStage, _ r: Restriction) -> Result {
        guard let table = maps.tables[map] else { return .dunno }
        let found: AccessTableResult
        let subject: String
        let what: String
        switch check {
        case .client:
            let (need, names) = clientNames()
            if let need { return .need(need) }
            found = AccessMaps.lookupClient(table, name: names.name ?? "unknown", address: facts.clientText)
            (subject, what) = ("\(names.name ?? "unknown")[\(facts.clientText)]", "Client host rejected")
        case .helo:
            guard let helo = facts.helo else { return .dunno }
            found = AccessMaps.lookup(table, keys: AccessKeys.hostname(helo))
            (subject, what) = (helo, "Helo command rejected")
        case .sender:
            guard let s = facts.sender else { return .dunno }
            found = AccessMaps.lookup(table, keys: AccessKeys.address(s))
            (subject, what) = (s, "Sender address rejected")
        case .recipient:
            guard let rcpt = facts.recipient else { return .dunno }
            found = AccessMaps.lookup(table, keys: AccessKeys.address(rcpt))
            (subject, what) = (rcpt, "Recipient address rejected")
        }
        return act(found, subject: subject, what: what, stage, r)
    }

    /// Where the evaluation is: a policy service's answer is kept under it.
    private var position: Int { list * 10_000 + entry }

    /// check_policy_service: the request Postfix would send at this stage, then the server's action (or the
    /// service's default_action when it gave none) acted on as an access map's.
    private func policy(_ settings: PolicyServiceSettings, _ stage: RestrictionStage, _ r: Restriction) -> Result {
        let rule = "\(stage.optionName) \(r.text)"
        guard let answer = policyAnswers[position] else {
            let (need, names) = clientNames()
            if let need { return .need(need) }
            return .ask(settings, request(stage, names))
        }
        let action: String
        switch answer {
        case .action(let a):
            action = a
        case .failed(let reason):
            return .noteThen(RestrictionNote(kind: .serviceFailed, rule: rule,
                                             text: "\(reason); default_action \(settings.defaultAction)"), settings.defaultAction)
        }
        let found: AccessTableResult
        do {
            found = .found(try AccessAction(parsing: action))
        } catch {
            found = .failed("the policy service answered '\(LogEscape.escape(action))': \(error)")
        }
        return act(found, subject: subjectText(stage), what: stage.subject, stage, r)
    }

    private func request(_ stage: RestrictionStage, _ names: ClientNames) -> PolicyRequest {
        PolicyRequest(
            protocolState: stage == .data ? .data : .rcpt, protocolName: facts.ehlo ? "ESMTP" : "SMTP",
            clientAddress: facts.clientText, clientName: names.name ?? PolicyRequest.unknownName, clientPort: facts.clientPort,
            reverseClientName: names.reverse ?? PolicyRequest.unknownName, serverAddress: facts.serverAddress,
            serverPort: facts.serverPort, heloName: facts.helo ?? "", sender: facts.sender ?? "",
            // Postfix sends the count of the transaction's recipients at DATA only; 0 before.
            recipient: facts.recipient ?? "", recipientCount: stage == .data ? facts.recipientCount : 0, instance: facts.instance)
    }

    private func act(_ found: AccessTableResult, subject: String, what: String, _ stage: RestrictionStage, _ r: Restriction) -> Result {
        func hit(_ reply: AccessReply, _ fallback: String, closes: Bool = false) -> RestrictionHit {
            let enhanced = reply.enhanced ?? (reply.code >= 500 ? "5.7.1" : "4.7.1")
            var h = RestrictionHit(stage: stage, restriction: r.text,
                                   reply: PolicyReply(code: reply.code, enhanced: enhanced,
                                                      text: "<\(subject)>: \(what): \(reply.text ?? fallback)", why: .restriction, named: false))
            h.closes = closes
            return h
        }
        switch found {
        case .notFound, .found(.dunno):
            return .dunno
        case .found(.ok):
            return .permit
        case .found(.reject(let reply)), .found(.deferred(let reply)):
            return .refuse(hit(reply, "Access denied"))
        case .found(.deferIfPermit(let reply)):
            return .deferIfPermit(hit(reply, "Service unavailable"))
        case .found(.deferIfReject):
            return .deferIfReject
        case .found(.disconnect(let reply)):
            return .refuse(hit(reply, "Access denied", closes: true))
        case .found(.warn(let text)):
            return .note(RestrictionNote(kind: .warn, rule: "\(stage.optionName) \(r.text)", text: text))
        case .found(.info(let text)):
            return .note(RestrictionNote(kind: .info, rule: "\(stage.optionName) \(r.text)", text: text))
        case .found(.prepend(let header)):
            return .prepend(header)
        case .found(.redirect):
            // Only destination maps are loaded with REDIRECT; an answer of a policy service never is one.
            return .refuse(hit(AccessReply(code: 451, enhanced: "4.3.5", text: "Server configuration error"), ""))
        case .failed(let why):
            var h = hit(AccessReply(code: 451, enhanced: "4.3.5", text: "Server configuration error"), "")
            h.restriction += " (\(why))"
            return .refuse(h)
        }
    }

    /// A blocklist's answer counts if the site's filter takes one of its addresses; a failed lookup counts
    /// nothing, as Postfix's.
    private func listed(_ name: String, _ site: DNSBLSite, _ hit: () -> RestrictionHit) -> Result {
        guard DNSName.isValid(name) else { return .dunno }
        let q = Question(name: name, type: .a)
        guard let a = answers[q] else { return .need(q) }
        let addresses = a.records.compactMap { rec -> [UInt8]? in
            if case .address(let b) = rec, b.count == 4 { return b }
            return nil
        }
        return addresses.contains(where: site.counts) ? .refuse(hit()) : .dunno
    }

    /// Postfix's test: a domain with an MX, A or AAAA record exists; one with none of them (or NXDOMAIN) is
    /// unknown; a lookup that failed is a `defer_if_permit`, without asking the rest.
    private func unknownDomain(_ domain: String, hit: (_ temporary: Bool) -> RestrictionHit) -> Result {
        guard DNSName.isValid(domain) else { return .refuse(hit(false)) }
        for type in [DNSType.mx, .a, .aaaa] {
            let q = Question(name: domain, type: type)
            guard let a = answers[q] else { return .need(q) }
            switch a {
            case .records: return .dunno
            case .nxdomain: return .refuse(hit(false))
            case .noData: continue
            // The resolver that failed once would make the next questions wait as long: decided now.
            case .failure: return .deferIfPermit(hit(true))
            }
        }
        return .refuse(hit(false))
    }

    /// Postfix's client names: `reverse` is what the PTR record says, `name` that name once its forward
    /// lookup gives the client's address back (otherwise "unknown"). At most 10 PTR names are tried.
    struct ClientNames {
        var name: String?
        var reverse: String?
        /// A lookup failed: the names may exist.
        var temporary = false
    }

    static let maxPTRNames = 10

    /// The question still needed, or the names (asked only when a restriction needs them).
    private func clientNames() -> (Question?, ClientNames) {
        let zone = facts.clientAddress.count == 4 ? "in-addr.arpa" : "ip6.arpa"
        guard let ptr = DNSName.reversed(facts.clientAddress, zone: zone) else { return (nil, ClientNames()) }
        let q = Question(name: ptr, type: .ptr)
        guard let a = answers[q] else { return (q, ClientNames()) }
        switch a {
        case .failure: return (nil, ClientNames(temporary: true))
        case .nxdomain, .noData: return (nil, ClientNames())
        case .records(let recs, _):
            let names = recs.compactMap { r -> String? in
                guard case .ptr(let n) = r else { return nil }
                let name = (n.hasSuffix(".") ? String(n.dropLast()) : n).lowercased()
                return DNSName.isValid(name) ? name : nil
            }.prefix(Self.maxPTRNames)
            guard let first = names.first else { return (nil, ClientNames()) }
            var temporary = false
            for name in names {
                let fq = Question(name: name, type: facts.clientAddress.count == 4 ? .a : .aaaa)
                guard let fa = answers[fq] else { return (fq, ClientNames()) }
                switch fa {
                case .records(let addrs, _):
                    if addrs.contains(where: { if case .address(let b) = $0 { return b == facts.clientAddress } else { return false } }) {
                        return (nil, ClientNames(name: name, reverse: first))
                    }
                case .failure: temporary = true
                case .nxdomain, .noData: break
                }
            }
            return (nil, ClientNames(name: nil, reverse: first, temporary: temporary))
        }
    }

    private func subjectText(_ stage: RestrictionStage) -> String {
        switch stage {
        case .client:
            let (need, names) = clientNames()
            return "\(need == nil ? names.name ?? "unknown" : "unknown")[\(facts.clientText)]"
        case .helo: return facts.helo ?? ""
        case .sender: return facts.sender ?? ""
        case .recipient: return facts.recipient ?? ""
        case .data: return "DATA"
        }
    }

    /// `defer_if_reject`: the refusal, made temporary.
    static func temporary(_ r: PolicyReply) -> PolicyReply {
        var t = r
        t.code = 450
        t.enhanced = r.enhanced.map { "4" + $0.dropFirst() }
        return t
    }
}
