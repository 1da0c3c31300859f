import Testing
@testable import SMTPGateCore

/// RFC 7208 check_host() against scripted DNS answers: each result, the mechanisms, include and redirect,
/// macros, and the lookup limits a hostile record runs into.
@Suite("SPF check_host")
struct SPFTests {
    typealias Q = SPFCheck.Question
    static let client: [UInt8] = [192, 0, 2, 10]

    func txt(_ s: String) -> DNSAnswer { .records([.text(Array(s.utf8))], ttl: 300) }
    func addr(_ b: [UInt8]...) -> DNSAnswer { .records(b.map { .address($0) }, ttl: 300) }

    func check(_ dns: [Q: DNSAnswer], ip: [UInt8] = client, sender: String = "alice@example.com",
               asked: UnsafeMutablePointer<Int>? = nil) -> (SPFResult, String) {
        var c = SPFCheck(ip: ip, sender: sender, helo: "mail.example.com")
        for _ in 0..<200 {
            switch c.run() {
            case .done(let r, let why): return (r, why)
            case .lookup(let q):
                asked?.pointee += 1
                c.provide(q, dns[q] ?? .nxdomain)
            }
        }
        Issue.record("did not finish")
        return (.none, "")
    }

    func t(_ name: String) -> Q { Q(name: name, type: .txt) }

    @Test func theBasicResults() {
        #expect(check([t("example.com"): txt("v=spf1 ip4:192.0.2.0/24 -all")]).0 == .pass)
        #expect(check([t("example.com"): txt("v=spf1 ip4:198.51.100.0/24 -all")]).0 == .fail)
        #expect(check([t("example.com"): txt("v=spf1 ~all")]).0 == .softfail)
        #expect(check([t("example.com"): txt("v=spf1 ?all")]).0 == .neutral)
        #expect(check([t("example.com"): txt("v=spf1 ip4:198.51.100.1")]).0 == .neutral, "nothing matched")
        #expect(check([:]).0 == .none)
        #expect(check([t("example.com"): txt("some other TXT")]).0 == .none)
        #expect(check([t("example.com"): .records([.text(Array("v=spf1 -all".utf8)), .text(Array("v=spf1 +all".utf8))], ttl: 1)]).0 == .permerror)
        #expect(check([t("example.com"): txt("v=spf1 ip4:300.1.1.1 -all")]).0 == .permerror)
        #expect(check([t("example.com"): txt("v=spf1 frobnicate -all")]).0 == .permerror)
        #expect(check([t("example.com"): .failure(.timeout)]).0 == .temperror)
        #expect(check([t("example.com"): txt("v=spf1 ip4:192.0.2.1/24 -all")]).0 == .pass, "host bits in ip4 are allowed")
    }

    @Test func aAndMXMechanismsWithPrefixes() {
        let dns: [Q: DNSAnswer] = [
            t("example.com"): txt("v=spf1 mx a:relay.example.com/28 -all"),
            Q(name: "example.com", type: .mx): .records([.mx(preference: 10, exchange: "mx1.example.com")], ttl: 1),
            Q(name: "mx1.example.com", type: .a): addr([198, 51, 100, 1]),
            Q(name: "relay.example.com", type: .a): addr([192, 0, 2, 1]),
        ]
        #expect(check(dns).0 == .pass, "192.0.2.10 is in relay's /28")
        #expect(check(dns, ip: [198, 51, 100, 1]).0 == .pass, "the MX host")
        #expect(check(dns, ip: [203, 0, 113, 1]).0 == .fail)
        let v6: [Q: DNSAnswer] = [t("example.com"): txt("v=spf1 a//64 -all"), Q(name: "example.com", type: .aaaa): addr(AddressBytes.parse("2001:db8::1")!)]
        #expect(check(v6, ip: AddressBytes.parse("2001:db8::ff")!).0 == .pass)
    }

    @Test func includeAndRedirect() {
        let dns: [Q: DNSAnswer] = [
            t("example.com"): txt("v=spf1 include:_spf.provider.example include:_soft.example -all"),
            t("_spf.provider.example"): txt("v=spf1 ip4:198.51.100.0/24 -all"),
            t("_soft.example"): txt("v=spf1 ip4:192.0.2.0/24 ~all"),
        ]
        #expect(check(dns).0 == .pass, "the second include passes")
        #expect(check(dns, ip: [203, 0, 113, 9]).0 == .fail, "an include that fails does not match; -all decides")
        #expect(check([t("example.com"): txt("v=spf1 include:gone.example -all")]).0 == .permerror, "an include without a record")
        #expect(check([t("example.com"): txt("v=spf1 include:slow.example -all"), t("slow.example"): .failure(.timeout)]).0 == .temperror)
        let redirected: [Q: DNSAnswer] = [t("example.com"): txt("v=spf1 redirect=_spf.example.net"), t("_spf.example.net"): txt("v=spf1 ip4:192.0.2.0/24 -all")]
        #expect(check(redirected).0 == .pass)
        #expect(check(redirected, ip: [203, 0, 113, 9]).0 == .fail)
        #expect(check([t("example.com"): txt("v=spf1 redirect=nothing.example")]).0 == .permerror, "a redirect to no record")
    }

    @Test func macrosExpand() {
        let dns: [Q: DNSAnswer] = [
            t("example.com"): txt("v=spf1 exists:%{ir}.%{l1r+-}._spf.%{d} -all"),
            Q(name: "10.2.0.192.alice._spf.example.com", type: .a): addr([127, 0, 0, 2]),
        ]
        #expect(check(dns).0 == .pass)
        #expect(check(dns, sender: "bob@example.com").0 == .fail)
        #expect(SPFMacro.expand("%{d2}", .init(sender: "a@b.c.example.com", domain: "b.c.example.com", ip: Self.client, helo: "h")) == "example.com")
        #expect(SPFMacro.expand("%{x}", .init(sender: "a@b", domain: "b", ip: Self.client, helo: "h")) == nil)
        #expect(SPFMacro.expand("50%", .init(sender: "a@b", domain: "b", ip: Self.client, helo: "h")) == nil)
    }

    @Test func theNullSenderIsCheckedByItsHeloName() {
        let dns: [Q: DNSAnswer] = [t("mail.example.com"): txt("v=spf1 ip4:192.0.2.10 -all")]
        #expect(check(dns, sender: "").0 == .pass)
    }

    @Test func hostileRecordsHitTheLimitsInsteadOfLookingUpWithoutEnd() {
        var dns: [Q: DNSAnswer] = [t("example.com"): txt("v=spf1 include:l0.example -all")]
        for i in 0..<20 { dns[t("l\(i).example")] = txt("v=spf1 include:l\(i + 1).example -all") }
        var asked = 0
        let (r, why) = check(dns, asked: &asked)
        #expect(r == .permerror && why.contains("lookups"), "\(why)")
        #expect(asked <= 12)
        let voids: [Q: DNSAnswer] = [t("example.com"): txt("v=spf1 a:v1.example a:v2.example a:v3.example -all")]
        #expect(check(voids).1.contains("void"))
        let many = "v=spf1 " + Array(repeating: "mx", count: 5).joined(separator: " ") + " -all"
        var mxAll: [Q: DNSAnswer] = [t("example.com"): txt(many)]
        mxAll[Q(name: "example.com", type: .mx)] = .records((0..<11).map { .mx(preference: $0, exchange: "m\($0).example") }, ttl: 1)
        #expect(check(mxAll).0 == .permerror, "more than 10 MX names")
        #expect(check([t("example.com"): txt("v=spf1 " + String(repeating: "a", count: 5000))]).0 == .permerror)
        #expect(check([t("example.com"): txt("v=spf1 -all")], sender: "x@" + String(repeating: "a", count: 300)).0 == .none)
    }

    @Test func verdictsRefuseFailAndTemperrorOnlyAndWriteTheHeader() throws {
        let fail = SPFVerdict(result: .fail, reason: "-all at example.com", ip: "192.0.2.10", sender: "alice@example.com", helo: "pc1")
        let r = try #require(fail.reply(logOnly: false))
        #expect(r.code == 550 && r.enhanced == "5.7.23" && r.why == .spf)
        #expect(r.text == "SPF validation failed: alice@example.com is not allowed to send from [192.0.2.10]")
        #expect(fail.reply(logOnly: true) == nil)
        var t = fail
        t.result = .temperror
        #expect(t.reply(logOnly: false)?.code == 451 && t.reply(logOnly: false)?.enhanced == "4.7.24")
        for other in [SPFResult.pass, .softfail, .neutral, .none, .permerror] {
            t.result = other
            #expect(t.reply(logOnly: false) == nil, "\(other) lets the mail on")
        }
        var p = fail
        p.result = .pass
        #expect(p.receivedHeader(by: "gate.test") == "Received-SPF: pass (gate.test: domain of alice@example.com designates 192.0.2.10 as permitted sender) client-ip=192.0.2.10; envelope-from=alice@example.com; helo=pc1;")
        let bounce = SPFVerdict(result: .none, reason: "", ip: "192.0.2.10", sender: "", helo: "mx.example.org")
        #expect(bounce.receivedHeader(by: "g").contains("envelope-from=postmaster@mx.example.org;"))
    }

    @Test func optionsAndTheirChecks() throws {
        let base = "mode fixed\nfixed_server 192.0.2.25\n"
        let c = try ConfigParser.parse(base + "spf fixed\nspf_fixed_ip 198.51.100.7\nspf_log_only yes\nspf_received_header yes\n", file: "t.conf")
        #expect(c.spf == .fixed && c.spfFixedIP == "198.51.100.7" && c.spfLogOnly && c.spfReceivedHeader && c.usesDNS)
        #expect {
            try ConfigParser.parse(base + "spf fixed\n", file: "t.conf")
        } throws: { e in String(describing: e).contains("spf_fixed_ip") }
        #expect(throws: (any Error).self) { try ConfigParser.parse(base + "spf sideways\n", file: "t.conf") }
        #expect(throws: (any Error).self) { try ConfigParser.parse(base + "spf_fixed_ip mail.example\n", file: "t.conf") }
        let w = ConfigParser.warnings(try ConfigParser.parse(base + "spf_fixed_ip 198.51.100.7\nlock_on spf\n", file: "t.conf"))
        #expect(w.contains("spf_fixed_ip is set but spf is not fixed: the address is not used"))
        #expect(w.contains("lock_on names spf but spf is off: nobody is locked for it"))
    }
}
