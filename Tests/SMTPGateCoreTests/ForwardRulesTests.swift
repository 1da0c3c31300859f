import Testing
@testable import SMTPGateCore

@Suite struct ForwardRulesTests {
    func ps(_ list: [String]) throws -> [AddressPattern] { try list.map { try AddressPattern(parsing: $0) } }

    func rules(globalAllow: [String] = [], globalDeny: [String] = [], allow: [String] = [], deny: [String] = []) throws -> ForwardRules {
        ForwardRules(globalAllow: try ps(globalAllow), globalDeny: try ps(globalDeny), allow: try ps(allow), deny: try ps(deny))
    }

    @Test func noRulesAdmitsEveryone() throws {
        let r = ForwardRules()
        #expect(r.admits("192.0.2.1") == .allowed)
        #expect(r.admits("fd77::1") == .allowed)
        #expect(r.admits("192.0.2.1").result == "opened")
    }

    @Test func fourStepsInRinetdOrder() throws {
        let r = try rules(globalAllow: ["192.168.1.*", "10.1.2.*"], globalDeny: ["192.168.1.5"],
                          allow: ["10.1.2.*", "192.168.1.?"], deny: ["10.1.2.7"])
        // 1. not in any global allow
        #expect(r.admits("172.16.0.1") == .notAllowed(global: true))
        #expect(r.admits("172.16.0.1").result == "not-allowed")
        // 2. global deny
        let globalDeny = try AddressPattern(parsing: "192.168.1.5")
        #expect(r.admits("192.168.1.5") == .denied(pattern: globalDeny, global: true))
        #expect(r.admits("192.168.1.5").result == "denied")
        // 3. globally allowed, but not by the forward's own allow list
        #expect(r.admits("192.168.1.50") == .notAllowed(global: false))
        // 4. the forward's deny
        let deny = try AddressPattern(parsing: "10.1.2.7")
        #expect(r.admits("10.1.2.7") == .denied(pattern: deny, global: false))
        #expect(r.admits("10.1.2.8") == .allowed)
        #expect(r.admits("192.168.1.6") == .allowed)
    }

    @Test func officeMoveTrap() throws {
        // The office moved from 10.0.0.* to 192.0.2.*; the forward was opened with allow *, but
        // the old global allow still limits it.
        let r = try rules(globalAllow: ["10.0.0.*"], allow: ["*"])
        #expect(r.admits("192.0.2.1") == .notAllowed(global: true))
        #expect(r.admits("10.0.0.9") == .allowed)
        #expect(r.warnings(forward: "web") == [
            "forward web: allow * admits only what the global allow rules admit (10.0.0.*): the global rules are checked first; add the addresses to the global allow list or drop it",
        ])
        let cidr = try rules(globalAllow: ["10.0.0.0/24"], allow: ["0.0.0.0/0"])
        #expect(cidr.warnings(forward: "web") == [
            "forward web: allow 0.0.0.0/0 admits only what the global allow rules admit (10.0.0.0/24): the global rules are checked first; add the addresses to the global allow list or drop it",
        ])
    }

    @Test func denyWinsOverAllow() throws {
        let r = try rules(allow: ["10.1.2.7"], deny: ["10.1.2.7"])
        #expect(r.admits("10.1.2.7") == .denied(pattern: try AddressPattern(parsing: "10.1.2.7"), global: false))
        #expect(r.warnings(forward: "db") == ["forward db: 10.1.2.7 is both allowed and denied: deny wins, so it is refused"])
    }

    @Test func allowNoGlobalAllowLetsThrough() throws {
        let r = try rules(globalAllow: ["10.0.0.*", "10.0.1.0/24"], allow: ["192.0.2.*", "10.0.0.5", "10.*", "172.16.0.0/12", "fd77::*"])
        #expect(r.warnings(forward: "web") == [
            "forward web: allow 192.0.2.* can never admit anyone: no global allow rule (10.0.0.*, 10.0.1.0/24) lets those addresses through",
            "forward web: allow 172.16.0.0/12 can never admit anyone: no global allow rule (10.0.0.*, 10.0.1.0/24) lets those addresses through",
            "forward web: allow fd77::* can never admit anyone: no global allow rule (10.0.0.*, 10.0.1.0/24) lets those addresses through",
        ])
        #expect(r.admits("192.0.2.1") == .notAllowed(global: true))
    }

    @Test func denyEverything() throws {
        #expect(try rules(deny: ["*"]).warnings(forward: "x") == ["forward x: deny * refuses every client: nothing is admitted"])
        #expect(try rules(globalDeny: ["*"]).warnings(forward: "x") == ["forward x: global deny * refuses every client: nothing is admitted"])
        #expect(try rules(deny: ["::/0"]).warnings(forward: "x") == ["forward x: deny ::/0 refuses every client of that family: nothing is admitted"])
        #expect(try rules(deny: ["*"]).admits("10.0.0.1") == .denied(pattern: try AddressPattern(parsing: "*"), global: false))
    }

    @Test func patternsThatNeverMatch() throws {
        let r = try rules(allow: ["FD77::*", "[fd77::1]", "::ffff:10.0.0.*", "fd77:0::1", "10.0.0"])
        #expect(r.warnings(forward: "v6") == [
            "forward v6: allow FD77::* can never match: client addresses are written in lower case: write fd77::*",
            "forward v6: allow [fd77::1] can never match: client addresses are written without brackets",
            "forward v6: allow ::ffff:10.0.0.* can never match: IPv4 clients are matched as a.b.c.d: write 10.0.0.*",
            "forward v6: allow fd77:0::1 can never match: client addresses are written as fd77::1",
            "forward v6: allow 10.0.0 can never match: it is not an address and has no wildcard",
        ])
    }

    @Test func sensibleRulesGiveNoWarnings() throws {
        let r = try rules(globalAllow: ["10.*", "fd77::/48"], globalDeny: ["10.9.*"], allow: ["10.1.*", "fd77::5"], deny: ["10.1.2.7"])
        #expect(r.warnings(forward: "ok").isEmpty)
    }
}
