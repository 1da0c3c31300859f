import Testing
@testable import SMTPGateCore

/// Postfix-style restriction lists: parsing, each restriction's answer and reply, list semantics
/// (permit ends a list, not the evaluation), defer_if_permit, warn_if_reject, policy_mode warn, DNS steps.
@Suite("Restriction lists")
struct RestrictionTests {
    static let client: [UInt8] = [192, 0, 2, 7]

    func facts(helo: String? = "mail.customer.example", sender: String? = "alice@customer.example",
               recipient: String? = "bob@example.net", authenticated: Bool = false, mynetworks: Bool = false,
               pipelined: Bool = false) -> RestrictionFacts {
        RestrictionFacts(clientAddress: Self.client, clientText: "192.0.2.7", helo: helo, sender: sender,
                         recipient: recipient, authenticated: authenticated, inMynetworks: mynetworks,
                         pipelinedAhead: pipelined)
    }

    func list(_ text: String) throws -> [Restriction] { try RestrictionList.parse(text) }

    /// Runs to the end, answering DNS questions from `dns` (NXDOMAIN for anything else).
    func outcome(_ lists: [(RestrictionStage, String)], _ f: RestrictionFacts, mode: RestrictionEvaluation.Mode = .enforce,
                 dns: [RestrictionEvaluation.Question: DNSAnswer] = [:], asked: UnsafeMutablePointer<[String]>? = nil,
                 policy: [PolicyServiceAnswer] = [], requests: UnsafeMutablePointer<[PolicyRequest]>? = nil) throws -> RestrictionOutcome {
        var answers = policy
        var e = RestrictionEvaluation(try lists.map { ($0.0, try list($0.1)) }, facts: f, mode: mode)
        for _ in 0..<100 {
            switch e.run() {
            case .done(let o): return o
            case .lookup(let q):
                asked?.pointee.append("\(q.name)/\(q.type)")
                e.provide(q, dns[q] ?? .nxdomain)
            case .policy(let id, _, let request):
                requests?.pointee.append(request)
                e.provide(policy: id, answers.isEmpty ? .failed(reason: "no answer scripted") : answers.removeFirst())
            }
        }
        Issue.record("did not finish")
        return RestrictionOutcome(refusal: nil, warnings: [])
    }

    func text(_ o: RestrictionOutcome) -> String? {
        o.refusal.map { "\($0.reply.code) \($0.reply.enhanced ?? "-") \($0.reply.text)" }
    }

    @Test func listsParseWithCommasAndSpacesAndShowBack() throws {
        let l = try list("permit_mynetworks,  permit_sasl_authenticated reject_rbl_client zen.example=127.0.0.[2..11], reject")
        #expect(l.map(\.text) == ["permit_mynetworks", "permit_sasl_authenticated", "reject_rbl_client zen.example=127.0.0.[2..11]", "reject"])
        #expect(try list("reject_invalid_hostname, reject_non_fqdn_hostname") == [.rejectInvalidHeloHostname, .rejectNonFqdnHeloHostname],
                "Postfix's old names")
    }

    @Test(arguments: [
        ("reject_unauth_destination", "is not supported: the proxy does not know"),
        ("reject_unverified_sender", "is not supported: address verification"),
        ("permit_nothing", "unknown restriction 'permit_nothing'"),
        ("reject_rbl_client", "needs a DNS zone"),
        ("reject_rbl_client zen.example*2", "takes no weight"),
        ("smtpd_recipient_restrictions = permit", "main.cf syntax"),
        ("check_sender_access", "needs a map after it"),
        ("check_policy_service", "needs inet:ADDRESS:PORT"),
    ])
    func badListsSayWhy(_ text: String, _ words: String) {
        #expect {
            try RestrictionList.parse(text)
        } throws: { e in String(describing: e).contains(words) }
    }

    @Test func aHostileListIsBoundedAndEscaped() {
        #expect(throws: RestrictionList.ParseError.self) { try RestrictionList.parse(String(repeating: "permit ", count: 300)) }
        #expect {
            try RestrictionList.parse("reject\u{1b}[2J")
        } throws: { e in !String(describing: e).contains("\u{1b}") }
    }

    @Test func optionsReadEveryListAndMynetworksAndPolicyMode() throws {
        let c = try ConfigParser.parse("mode fixed\nfixed_server 192.0.2.25\nhelo_restrictions reject_invalid_helo_hostname, permit\n"
            + "recipient_restrictions permit_mynetworks reject_unknown_recipient_domain\nmynetworks 10.0.0.0/8\npolicy_mode warn\n",
            file: "t.conf")
        #expect(c.restrictions[.helo] == [.rejectInvalidHeloHostname, .permit])
        #expect(c.restrictions[.recipient] == [.permitMynetworks, .rejectUnknownRecipientDomain])
        #expect(c.restrictions[.client] == nil && c.mynetworks.map(\.description) == ["10.0.0.0/8"] && c.policyMode == .warn)
        #expect(c.usesDNS, "reject_unknown_recipient_domain asks DNS")
        let shown = ConfigParser.render(c)
        #expect(shown.contains("\nhelo_restrictions reject_invalid_helo_hostname, permit\n") && shown.contains("\npolicy_mode warn\n"))
        #expect(throws: (any Error).self) { try ConfigParser.parse("mode fixed\nfixed_server 192.0.2.25\npolicy_mode maybe\n", file: "t.conf") }
        let d = try ConfigParser.parse("mode fixed\nfixed_server 192.0.2.25\n", file: "t.conf")
        #expect(d.mynetworks.map(\.description) == ["127.0.0.0/8", "::1/128"] && d.policyMode == .enforce && !d.usesDNS)
    }

    @Test func permitEndsItsListButTheNextListStillRuns() throws {
        let o = try outcome([(.client, "permit, reject"), (.recipient, "reject")], facts())
        #expect(text(o) == "554 5.7.1 <bob@example.net>: Recipient address rejected: Access denied")
        #expect(try outcome([(.client, "permit_mynetworks, reject")], facts(mynetworks: true)).refusal == nil)
        #expect(text(try outcome([(.client, "permit_mynetworks, reject")], facts()))
            == "554 5.7.1 <unknown[192.0.2.7]>: Client host rejected: Access denied")
        #expect(try outcome([(.recipient, "permit_sasl_authenticated, reject")], facts(authenticated: true)).refusal == nil)
        #expect(try outcome([(.recipient, "")], facts()).refusal == nil, "an empty list permits")
    }

    @Test func heloAndAddressChecksGivePostfixsReplies() throws {
        #expect(text(try outcome([(.helo, "reject_invalid_helo_hostname")], facts(helo: "bad_host!name")))
            == "501 5.5.2 <bad_host!name>: Helo command rejected: Invalid name")
        #expect(try outcome([(.helo, "reject_invalid_helo_hostname")], facts(helo: "[192.0.2.7]")).refusal == nil)
        #expect(text(try outcome([(.helo, "reject_non_fqdn_helo_hostname")], facts(helo: "pc1")))
            == "504 5.5.2 <pc1>: Helo command rejected: need fully-qualified hostname")
        #expect(try outcome([(.helo, "reject_non_fqdn_helo_hostname")], facts(helo: nil)).refusal == nil, "no HELO, nothing to judge")
        #expect(text(try outcome([(.sender, "reject_non_fqdn_sender")], facts(sender: "alice@localhost")))
            == "504 5.5.2 <alice@localhost>: Sender address rejected: need fully-qualified address")
        #expect(try outcome([(.sender, "reject_non_fqdn_sender")], facts(sender: "")).refusal == nil, "the null sender is never refused for it")
        #expect(text(try outcome([(.recipient, "reject_non_fqdn_recipient")], facts(recipient: "postmaster")))
            == "504 5.5.2 <postmaster>: Recipient address rejected: need fully-qualified address")
        #expect(text(try outcome([(.recipient, "reject_unauth_pipelining")], facts(pipelined: true)))
            == "503 5.5.0 <bob@example.net>: Recipient address rejected: Improper use of SMTP command pipelining")
        #expect(try outcome([(.recipient, "reject_unauth_pipelining")], facts()).refusal == nil)
    }

    @Test func unknownDomainsAskMXThenAThenAAAA() throws {
        var asked: [String] = []
        let q = { (n: String, t: DNSType) in RestrictionEvaluation.Question(name: n, type: t) }
        let o = try outcome([(.sender, "reject_unknown_sender_domain")], facts(),
                            dns: [q("customer.example", .mx): .noData, q("customer.example", .a): .records([.address([192, 0, 2, 1])], ttl: 60)],
                            asked: &asked)
        #expect(o.refusal == nil && asked == ["customer.example/mx", "customer.example/a"])
        #expect(text(try outcome([(.sender, "reject_unknown_sender_domain")], facts()))
            == "450 4.1.8 <alice@customer.example>: Sender address rejected: Domain not found")
        let none: [RestrictionEvaluation.Question: DNSAnswer] = [q("example.net", .mx): .noData, q("example.net", .a): .noData,
                                                                  q("example.net", .aaaa): .noData]
        #expect(text(try outcome([(.recipient, "reject_unknown_recipient_domain")], facts(), dns: none))
            == "450 4.1.2 <bob@example.net>: Recipient address rejected: Domain not found")
        let failing: [RestrictionEvaluation.Question: DNSAnswer] = [q("example.net", .mx): .failure(.timeout)]
        asked = []
        let f = try outcome([(.recipient, "reject_unknown_recipient_domain, permit")], facts(), dns: failing, asked: &asked)
        #expect(asked == ["example.net/mx"], "a failed lookup stops the questions: the next would wait as long")
        #expect(text(f) == "450 4.1.2 <bob@example.net>: Recipient address rejected: Domain lookup failed",
                "a failed lookup is defer_if_permit: made when the rest permits")
        #expect(try outcome([(.sender, "reject_unknown_sender_domain")], facts(sender: "")).refusal == nil)
    }

    @Test func blocklistsAskTheReversedAddressOrTheDomain() throws {
        var asked: [String] = []
        let listed = DNSAnswer.records([.address([127, 0, 0, 2])], ttl: 60)
        let o = try outcome([(.client, "reject_rbl_client bl.example, reject_rhsbl_sender rhs.example")], facts(),
                            dns: [.init(name: "7.2.0.192.bl.example", type: .a): listed], asked: &asked)
        #expect(text(o) == "554 5.7.1 Service unavailable; Client host [192.0.2.7] blocked using bl.example")
        #expect(asked == ["7.2.0.192.bl.example/a"])
        let s = try outcome([(.sender, "reject_rhsbl_sender rhs.example")], facts(),
                            dns: [.init(name: "customer.example.rhs.example", type: .a): listed])
        #expect(text(s) == "554 5.7.1 Service unavailable; Sender address [alice@customer.example] blocked using rhs.example")
        let r = try outcome([(.recipient, "reject_rhsbl_recipient rhs.example=127.0.0.3")], facts(),
                            dns: [.init(name: "example.net.rhs.example", type: .a): listed])
        #expect(r.refusal == nil, "an answer outside the filter is no listing")
        let quiet = try outcome([(.client, "reject_rbl_client bl.example")], facts(),
                                dns: [.init(name: "7.2.0.192.bl.example", type: .a): .failure(.timeout)])
        #expect(quiet.refusal == nil, "a failed lookup counts nothing")
    }

    @Test func deferIfPermitWaitsForTheEndAndARejectStillWins() throws {
        #expect(text(try outcome([(.client, "defer_if_permit"), (.recipient, "permit")], facts()))
            == "450 4.7.1 <unknown[192.0.2.7]>: Client host rejected: Try again later")
        #expect(text(try outcome([(.client, "defer_if_permit"), (.recipient, "reject_non_fqdn_recipient")], facts(recipient: "x")))?
            .hasPrefix("504") == true)
        #expect(text(try outcome([(.client, "defer_if_reject, reject")], facts()))
            == "450 4.7.1 <unknown[192.0.2.7]>: Client host rejected: Access denied")
        #expect(text(try outcome([(.client, "defer")], facts())) == "450 4.7.1 <unknown[192.0.2.7]>: Client host rejected: Try again later")
    }

    @Test func warnIfRejectTurnsOnlyTheNextRefusalIntoAWarning() throws {
        let o = try outcome([(.recipient, "warn_if_reject reject_non_fqdn_recipient, reject_unauth_pipelining, warn_if_reject permit, reject")],
                            facts(recipient: "x", pipelined: true))
        #expect(o.warnings.map(\.restriction) == ["reject_non_fqdn_recipient"])
        #expect(o.warnings.first?.reply.code == 504)
        #expect(o.refusal?.restriction == "reject_unauth_pipelining", "the one after it is enforced")
        let p = try outcome([(.recipient, "warn_if_reject permit_mynetworks, reject")], facts())
        #expect(p.refusal?.restriction == "reject" && p.warnings.isEmpty, "a warn_if_reject on a restriction that did not refuse lapses")
    }

    @Test func policyModeWarnRefusesNothingAndWarnsOfEverything() throws {
        let o = try outcome([(.client, "reject"), (.helo, "reject_non_fqdn_helo_hostname"), (.recipient, "defer_if_permit, permit")],
                            facts(helo: "pc1"), mode: .warn)
        #expect(o.refusal == nil)
        #expect(o.warnings.map(\.rule) == ["client_restrictions reject", "helo_restrictions reject_non_fqdn_helo_hostname",
                                           "recipient_restrictions defer_if_permit"])
    }

    @Test func hostileFactsNeverAskBadNames() throws {
        var asked: [String] = []
        let long = String(repeating: "a", count: 300) + ".example"
        let o = try outcome([(.sender, "reject_unknown_sender_domain, reject_rhsbl_sender rhs.example")],
                            facts(sender: "x@" + long), asked: &asked)
        #expect(asked.isEmpty && o.refusal?.reply.code == 450, "an impossible domain is unknown without asking")
        #expect(try outcome([(.sender, "reject_rhsbl_sender rhs.example")], facts(sender: "x@[192.0.2.1]")).refusal == nil)
    }

    func maps(_ files: [String: String]) throws -> AccessMapSet {
        var tables: [String: any AccessTable] = [:]
        for (spec, text) in files {
            tables[spec] = try AccessMaps.load(spec) { _ in Array(text.utf8) }
        }
        return AccessMapSet(tables: tables)
    }

    func mapped(_ lists: [(RestrictionStage, String)], _ f: RestrictionFacts, _ m: AccessMapSet) throws -> RestrictionOutcome {
        var e = RestrictionEvaluation(try lists.map { ($0.0, try list($0.1)) }, facts: f, maps: m)
        for _ in 0..<10 {
            switch e.run() {
            case .done(let o): return o
            case .lookup(let q): e.provide(q, .nxdomain)   // check_client_access asks the client's PTR name
            case .policy: Issue.record("no policy service here")
            }
        }
        Issue.record("did not finish")
        return RestrictionOutcome(refusal: nil, warnings: [])
    }

    @Test func accessMapActionsAreActedOnAsPostfixDoes() throws {
        let m = try maps([
            "texthash:/s": "customer.example OK\nspam.example REJECT go away\nslow.example 451 4.7.1 later\n"
                + "tagged.example PREPEND X-Tag: yes\nwatched.example WARN watch this\nbye.example 421 closing\n"
                + "neutral.example DUNNO\n",
            "cidr:/c": "192.0.2.0/24 REJECT\n",
        ])
        let s = "sender_restrictions"
        func sender(_ a: String) throws -> RestrictionOutcome {
            try mapped([(.sender, "check_sender_access texthash:/s, reject")], facts(sender: a), m)
        }
        #expect(try sender("a@mail.customer.example").refusal == nil, "OK permits, a parent domain matching")
        #expect(text(try sender("a@spam.example")) == "554 5.7.1 <a@spam.example>: Sender address rejected: go away")
        #expect(text(try sender("a@slow.example")) == "451 4.7.1 <a@slow.example>: Sender address rejected: later")
        #expect(try sender("a@neutral.example").refusal?.restriction == "reject", "DUNNO goes on to the next restriction")
        let tagged = try mapped([(.sender, "check_sender_access texthash:/s")], facts(sender: "a@tagged.example"), m)
        #expect(tagged.refusal == nil && tagged.prepend == ["X-Tag: yes"])
        let watched = try mapped([(.sender, "check_sender_access texthash:/s")], facts(sender: "a@watched.example"), m)
        #expect(watched.notes == [RestrictionNote(kind: .warn, rule: "\(s) check_sender_access texthash:/s", text: "watch this")])
        let bye = try sender("a@bye.example")
        #expect(bye.refusal?.closes == true && bye.refusal?.reply.code == 421)
        let client = try mapped([(.client, "check_client_access cidr:/c")], facts(), m)
        #expect(text(client) == "554 5.7.1 <unknown[192.0.2.7]>: Client host rejected: Access denied")
        #expect(try mapped([(.client, "check_client_access cidr:/missing")], facts(), m).refusal == nil,
                "a map the set does not hold is never consulted (the daemon loads every map it names)")
        let c = try ConfigParser.parse("mode fixed\nfixed_server 192.0.2.25\nsender_restrictions check_sender_access texthash:/s, "
            + "check_sender_access texthash:/s\nrecipient_restrictions check_recipient_access cidr:/c\n", file: "t.conf")
        #expect(AccessMapSet.specs(c) == ["texthash:/s", "cidr:/c"], "each map once, in list order")
    }

    @Test func aPolicyServiceIsAskedWithPostfixsAttributesAndItsActionIsActedOn() throws {
        var requests: [PolicyRequest] = []
        let svc = "recipient_restrictions check_policy_service inet:127.0.0.1:10023"
        var f = facts()
        f.ehlo = true
        f.recipientCount = 2
        f.instance = "s1.1"
        let greylisted = try outcome([(.recipient, "check_policy_service inet:127.0.0.1:10023, permit")], f,
                                     policy: [.action("DEFER_IF_PERMIT Greylisted, see http://postgrey.schweikert.ch/help/example.net.html")],
                                     requests: &requests)
        #expect(text(greylisted) == "450 4.7.1 <bob@example.net>: Recipient address rejected: Greylisted, see http://postgrey.schweikert.ch/help/example.net.html")
        let r = try #require(requests.first)
        #expect(r.protocolState == .rcpt && r.protocolName == "ESMTP" && r.clientAddress == "192.0.2.7" && r.clientName == "unknown")
        #expect(r.heloName == "mail.customer.example" && r.sender == "alice@customer.example" && r.recipient == "bob@example.net")
        #expect(r.recipientCount == 0 && r.instance == "s1.1", "Postfix sends recipient_count at DATA only")
        let tagged = try outcome([(.recipient, "check_policy_service inet:127.0.0.1:10023")], facts(),
                                 policy: [.action("PREPEND X-Greylist: delayed 62 seconds by postgrey-1.37")])
        #expect(tagged.refusal == nil && tagged.prepend == ["X-Greylist: delayed 62 seconds by postgrey-1.37"])
        let dead = try outcome([(.recipient, "check_policy_service inet:127.0.0.1:10023, permit")], facts(),
                               policy: [.failed(reason: "connection refused")])
        #expect(dead.refusal == nil, "default_action DUNNO: a dead policy server never stops mail")
        #expect(dead.notes == [RestrictionNote(kind: .serviceFailed, rule: svc, text: "connection refused; default_action DUNNO")])
        let strict = try outcome([(.recipient, "check_policy_service { inet:127.0.0.1:10023, { default_action = 451 4.3.5 Server configuration problem } }")],
                                 facts(), policy: [.failed(reason: "timeout")])
        #expect(text(strict) == "451 4.3.5 <bob@example.net>: Recipient address rejected: Server configuration problem")
        let garbage = try outcome([(.recipient, "check_policy_service inet:127.0.0.1:10023")], facts(), policy: [.action("FROBNICATE")])
        #expect(garbage.refusal?.reply.code == 451, "an action SMTPGate cannot act on is a configuration error of the server: 451")
        #expect(throws: RestrictionList.ParseError.self) { try RestrictionList.parse("check_policy_service postgrey.example:10023") }
        #expect(throws: RestrictionList.ParseError.self) { try RestrictionList.parse("check_policy_service { inet:127.0.0.1:10023") }
    }

    @Test func clientNamesAreThePTRNameConfirmedByItsForwardLookup() throws {
        let ptr = RestrictionEvaluation.Question(name: "7.2.0.192.in-addr.arpa", type: .ptr)
        let confirmed: [RestrictionEvaluation.Question: DNSAnswer] = [
            ptr: .records([.ptr("pc7.customer.example.")], ttl: 60),
            .init(name: "pc7.customer.example", type: .a): .records([.address(Self.client)], ttl: 60),
        ]
        let liar: [RestrictionEvaluation.Question: DNSAnswer] = [ptr: .records([.ptr("www.bank.example")], ttl: 60),
                                                                  .init(name: "www.bank.example", type: .a): .records([.address([198, 51, 100, 1])], ttl: 60)]
        let both = "reject_unknown_reverse_client_hostname, reject_unknown_client_hostname"
        #expect(try outcome([(.client, both)], facts(), dns: confirmed).refusal == nil)
        #expect(text(try outcome([(.client, both)], facts(), dns: liar))
            == "450 4.7.25 Client host rejected: cannot find your hostname, [192.0.2.7]", "a PTR name that does not lead back")
        #expect(text(try outcome([(.client, both)], facts()))
            == "450 4.7.25 Client host rejected: cannot find your reverse hostname, [192.0.2.7]", "no PTR record")
        let failing: [RestrictionEvaluation.Question: DNSAnswer] = [ptr: .failure(.timeout)]
        #expect(text(try outcome([(.client, "reject_unknown_client_hostname, permit")], facts(), dns: failing))?.hasPrefix("450 4.7.25") == true,
                "a failed lookup defers (defer_if_permit)")
        let m = try maps(["texthash:/c": "customer.example REJECT no direct mail from dial-up\n"])
        var e = RestrictionEvaluation([(.client, try list("check_client_access texthash:/c"))], facts: facts(), maps: m)
        var final: RestrictionOutcome?
        for _ in 0..<10 {
            switch e.run() {
            case .lookup(let q): e.provide(q, confirmed[q] ?? .nxdomain)
            case .done(let o): final = o
            case .policy: Issue.record("no policy service here")
            }
            if final != nil { break }
        }
        #expect(final.flatMap { text($0) } == "554 5.7.1 <pc7.customer.example[192.0.2.7]>: Client host rejected: no direct mail from dial-up",
                "the verified name and its parent domains are looked up")
        var requests: [PolicyRequest] = []
        _ = try outcome([(.recipient, "check_policy_service inet:127.0.0.1:10023")], facts(), dns: liar, policy: [.action("DUNNO")], requests: &requests)
        #expect(requests.first?.clientName == "unknown" && requests.first?.reverseClientName == "www.bank.example")
    }

    @Test func unknownHeloHostnamesAreLookedUp() throws {
        let q = RestrictionEvaluation.Question(name: "mail.customer.example", type: .mx)
        #expect(text(try outcome([(.helo, "reject_unknown_helo_hostname")], facts()))
            == "450 4.7.1 <mail.customer.example>: Helo command rejected: Host not found")
        #expect(try outcome([(.helo, "reject_unknown_helo_hostname")], facts(), dns: [q: .records([.mx(preference: 1, exchange: "x")], ttl: 1)]).refusal == nil)
        #expect(try outcome([(.helo, "reject_unknown_helo_hostname")], facts(helo: "[192.0.2.7]")).refusal == nil)
    }
}
