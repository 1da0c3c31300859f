import Testing
@testable import SMTPGateCore

/// `auth_require` and `auth_skip dnsbl`: the options, the gate's verdicts, and what the machine tells it.
@Suite("Authentication gate")
struct AuthGateTests {
    static let base = "mode fixed\nfixed_server 192.0.2.25\n"
    static let listing = DNSBLVerdict(client: "192.0.2.7", score: 2, threshold: 1, zones: ["bl.example"],
                                      heaviest: "bl.example", failed: [])

    func parse(_ lines: String) throws -> Config {
        try ConfigParser.parse(Self.base + lines, file: "t.conf")
    }

    @Test func defaultsRequireNothingAndSkipNothing() throws {
        let c = try parse("")
        #expect(c.authRequire == .no && c.authSkip.isEmpty)
        let shown = ConfigParser.render(c)
        #expect(shown.contains("\nauth_require no\n") && shown.contains("\nauth_skip none\n"))
    }

    @Test func optionsReadSmtpGatedsValuesAndReadBackTheirOwnOutput() throws {
        let c = try parse("auth_require IfSupported\nauth_skip regex, dnsbl spf\ndnsbl bl.example\n")
        #expect(c.authRequire == .ifSupported && c.authSkip == [.dnsbl, .regex, .spf])
        let lines = ConfigParser.render(c).split(separator: "\n").filter { $0.hasPrefix("auth_") }
        #expect(lines == ["auth_require ifsupported", "auth_skip dnsbl,regex,spf"])
        let again = try parse(lines.joined(separator: "\n") + "\ndnsbl bl.example\n")
        #expect(again.authRequire == c.authRequire && again.authSkip == c.authSkip)
        #expect(try parse("auth_skip none\n").authSkip.isEmpty)
    }

    @Test(arguments: ["auth_require yes", "auth_require", "auth_skip antivir", "auth_skip none,dnsbl", "auth_skip \u{1b}[2J"])
    func badValuesAreErrorsOnTheirLine(_ line: String) {
        #expect {
            try parse(line + "\n")
        } throws: { e in
            let text = String(describing: e)
            return text.contains("t.conf:3") && !text.contains("\u{1b}")
        }
    }

    @Test func warningsNameSkipsThatChangeNothing() throws {
        #expect(ConfigParser.warnings(try parse("auth_skip dnsbl\n")) == ["auth_skip names dnsbl but no dnsbl sites are set: it changes nothing"])
        #expect(ConfigParser.warnings(try parse("auth_skip dnsbl,spf\ndnsbl bl.example\n"))
            == ["auth_skip names spf but spf is off: it changes nothing"])
        #expect(ConfigParser.warnings(try parse("auth_skip dnsbl\ndnsbl bl.example\n")).isEmpty)
    }

    @Test(arguments: [
        (AuthRequirement.no, Bool?.some(false), false, AuthGate.Verdict.pass),
        (.no, true, false, .pass),
        (.no, nil, false, .pass),
        (.ifSupported, false, false, .pass),
        (.ifSupported, true, false, .authRequired),
        (.ifSupported, nil, false, .authRequired),
        (.ifSupported, true, true, .pass),
        (.mandatory, false, false, .authRequired),
        (.mandatory, true, false, .authRequired),
        (.mandatory, false, true, .pass),
    ])
    func requirementAtMail(_ r: AuthRequirement, offered: Bool?, authenticated: Bool, expected: AuthGate.Verdict) {
        let state = PolicyState(authenticated: authenticated, authOffered: offered)
        #expect(AuthGate(requirement: r).verdict(.mail(from: "<a@x.test>"), state) == expected)
    }

    @Test func onlyMailIsGated() {
        let gate = AuthGate(requirement: .mandatory, listing: Self.listing)
        for p in [PolicyPoint.hello(name: "x"), .rcpt(to: "<b@x.test>"), .data, .endOfData(size: 10)] {
            #expect(gate.verdict(p, PolicyState()) == .pass)
        }
    }

    @Test func aHeldListingRefusesUntilTheClientAuthenticatesWhateverTheRequirement() {
        let gate = AuthGate(requirement: .no, listing: Self.listing)
        #expect(!gate.isOpen && AuthGate(requirement: .no).isOpen)
        #expect(gate.verdict(.mail(from: "<>"), PolicyState()) == .listed(Self.listing))
        #expect(gate.verdict(.mail(from: "<>"), PolicyState(authenticated: true)) == .pass)
    }

    @Test func theHeldListingsReplyIsTheBlocklistsAsAtConnect() {
        let r = ProxyReplies.dnsblListedAtMail(Self.listing)
        #expect(r.code == 554 && r.enhanced == "5.7.1" && !r.named && r.why == .dnsbl)
        #expect(r.text == "Service unavailable; client [192.0.2.7] blocked using bl.example")
        #expect(ProxyReplies.authRequired.code == 530 && ProxyReplies.authRequired.enhanced == "5.7.0")
    }

    @Test func theMachineKnowsWhatTheMTAOfferedAndWhetherAuthSucceeded() {
        let seen = StateLog()
        let h = Harness()
        h.m.policy = { p, s in
            if case .mail = p { seen.states.append(s) }
            return .relay
        }
        #expect(h.m.authOffered == nil, "unknown before any EHLO reply")
        h.open(caps: ["PIPELINING", "AUTH PLAIN LOGIN"])
        #expect(h.m.authOffered == true && !h.m.authenticated)
        h.client("MAIL FROM:<a@x.test>\r\n")
        h.server("250 ok\r\n")
        h.client("RSET\r\n")
        h.server("250 ok\r\n")
        h.client("AUTH PLAIN dGVzdAB0ZXN0AHRlc3Q=\r\n")
        h.server("535 5.7.8 no\r\n")
        #expect(!h.m.authenticated, "a refused AUTH authenticates nobody")
        h.client("AUTH PLAIN dGVzdAB0ZXN0AHRlc3Q=\r\n")
        h.server("235 2.7.0 ok\r\n")
        h.client("MAIL FROM:<b@x.test>\r\n")
        #expect(seen.states.map(\.authenticated) == [false, true])
        #expect(seen.states.allSatisfy { $0.authOffered == true && $0.helo == "client.test" })

        let plain = Harness()
        plain.open(caps: ["PIPELINING", "SIZE 100"])
        #expect(plain.m.authOffered == false)
        plain.client("HELO again.test\r\n")
        plain.server("250 mx.test\r\n")
        #expect(plain.m.authOffered == nil, "after HELO nothing is known of AUTH")
    }

    @Test func aRcptPipelinedBehindItsMailIsJudgedWithThatMailsSender() {
        let seen = StateLog()
        let h = Harness()
        h.m.policy = { p, s in
            if case .rcpt = p { seen.states.append(s) }
            return .relay
        }
        h.server(Harness.greeting)
        h.client("EHLO first.test\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@x.test>\r\nRCPT TO:<c@x.test>\r\nRSET\r\nMAIL FROM:<d@x.test>\r\nRCPT TO:<e@x.test>\r\n")
        #expect(seen.states.map(\.mailFrom) == ["<a@x.test>", "<a@x.test>", "<d@x.test>"])
        #expect(seen.states.map(\.helo) == ["first.test", "first.test", "first.test"], "the HELO sent, before its reply")
        #expect(seen.states.map(\.recipients) == [0, 1, 0] && seen.states.map(\.transactions) == [1, 1, 2])
        #expect(seen.states.allSatisfy { $0.ehlo })
    }

    @Test func aMailPipelinedBehindItsEHLOIsAskedBeforeTheMTAHasSaidWhatItOffers() {
        let seen = StateLog()
        let h = Harness()
        h.m.policy = { p, s in
            if case .mail = p { seen.states.append(s) }
            return .relay
        }
        h.server(Harness.greeting)
        h.client("EHLO client.test\r\nMAIL FROM:<a@x.test>\r\n")
        #expect(seen.states.map(\.authOffered) == [nil])
        #expect(AuthGate(requirement: .ifSupported).verdict(.mail(from: "<a@x.test>"), seen.states[0]) == .authRequired)
    }

    @Test func theMachineRefusesAGatedMailWithTheGatesReplyInPipelineOrder() {
        let h = Harness()
        let gate = AuthGate(requirement: .ifSupported)
        h.m.policy = { p, s in
            gate.verdict(p, s) == .authRequired ? .reply(ProxyReplies.authRequired, then: .carryOn) : .relay
        }
        h.open()
        let sent = h.client("MAIL FROM:<a@x.test>\r\nRCPT TO:<b@x.test>\r\nDATA\r\n")
        #expect(sent.server.isEmpty, "an unauthenticated transaction never reaches the MTA")
        #expect(sent.client == "530 5.7.0 \(PN): Authentication required\r\n"
            + "503 5.5.1 \(PN): no mail transaction (MAIL was refused)\r\n"
            + "503 5.5.1 \(PN): no mail transaction (MAIL was refused)\r\n")
    }

    final class StateLog {
        var states: [PolicyState] = []
    }
}
