import Testing
@testable import SMTPGateCore

@Suite("DNSBL sites, filters and scores")
struct DNSBLTests {
    static let base = "mode fixed\nfixed_server 192.0.2.25\n"

    func parse(_ lines: String) throws -> Config {
        try ConfigParser.parse(Self.base + lines, file: "t.conf")
    }

    func site(_ s: String) throws -> DNSBLSite { try DNSBLSite(parsing: Substring(s)) }

    @Test func postscreenSyntaxReads() throws {
        let s = try site("b.Barracuda.example.=127.0.0.[2..11]*3")
        #expect(s.zone == "b.barracuda.example" && s.weight == 3)
        #expect(s.filter?.octets == [[127...127], [0...0], [0...0], [2...11]])
        #expect(try site("swl.example*-4").weight == -4)
        #expect(try site("list.example=127.[0..255].[0..255].[0;2;10..12]").filter?.description == "127.[0..255].[0..255].[0;2;10..12]")
        #expect(try site("plain.example") == DNSBLSite(zone: "plain.example", filter: nil, weight: 1))
        #expect(try site("zen.example=127.0.0.[2..11]*3").description == "zen.example=127.0.0.[2..11]*3")
    }

    @Test func smtpGatedsCommaListReadsAndShowsBack() throws {
        let c = try parse("dnsbl zen.example,bl.example  w.example*-2\ndnsbl_threshold 2\n")
        #expect(c.dnsbl.map(\.zone) == ["zen.example", "bl.example", "w.example"])
        #expect(c.dnsblThreshold == 2)
        let shown = ConfigParser.render(c)
        #expect(shown.contains("\ndnsbl zen.example bl.example w.example*-2\n"))
        let again = try ConfigParser.parse(shown, file: "shown.conf")
        #expect(again.dnsbl == c.dnsbl && again.dnsblThreshold == 2, "check-config's output reads back the same")
        #expect(try parse("dnsbl none\n").dnsbl.isEmpty)
        #expect(ConfigParser.render(try parse("")).contains("\ndnsbl none\n"))
    }

    @Test(arguments: [
        "bl..example", "bl.example=127.0.0.[9..2]", "bl.example=127.0.0", "bl.example=300.0.0.1", "bl.example=127.0.0.[2..",
        "bl.example*x", "bl.example*1000", "bl.example*", "bl.example*-", "bl.example=127.0.0.[]", "bl.example=127.0.0.[2;;3]",
        "bl.example=127.0.0.[1..2..3]", "bl.example=127.0.0.0.1", "bl.example=", "=127.0.0.2", "*3",
        String(repeating: "a.", count: 95) + "example", "bl\u{1}.example", "bl.example=127.0.0.[" + Array(repeating: "1", count: 17).joined(separator: ";") + "]",
        "bl.example=00001.0.0.1", "bl.ex\u{0}ample",
    ])
    func hostileSitesAreRefused(_ word: String) {
        #expect(throws: PolicyValueError.self) { _ = try site(word) }
    }

    @Test func badOptionValuesNameTheFileAndLine() {
        for line in ["dnsbl bl.example*x", "dnsbl_threshold 0", "dnsbl_threshold 1001", "dns_server 127.0.0.1@0",
                     "dns_server nameserver", "timeout_dns 0", "timeout_dns 301",
                     "dnsbl " + (0..<33).map { "z\($0).example" }.joined(separator: ","),
                     "dns_server " + (0..<9).map { "127.0.0.\($0 + 1)" }.joined(separator: ",")] {
            #expect {
                _ = try parse(line + "\n")
            } throws: { e in
                guard let e = e as? ConfigError else { return false }
                return e.line == 3 && e.message.hasPrefix("option '")
            }
        }
    }

    @Test func dnsServersReadInUnboundsForm() throws {
        let c = try parse("dns_server 127.0.0.1@5353, ::1 192.0.2.53@53\ntimeout_dns 1.5\n")
        #expect(c.dnsServers.map(\.description) == ["127.0.0.1@5353", "::1", "192.0.2.53"])
        #expect(c.timeoutDNS == 1.5)
        #expect(ConfigParser.render(c).contains("\ndns_server 127.0.0.1@5353,::1,192.0.2.53\n"))
        #expect(ConfigParser.render(try parse("")).contains("# dns_server (not set)"))
    }

    @Test func theDefaultFilterIgnoresQueryErrorsAndLoopback() {
        #expect(DNSBLFilter.countsByDefault([127, 0, 0, 2]))
        #expect(DNSBLFilter.countsByDefault([127, 0, 1, 9]))
        #expect(!DNSBLFilter.countsByDefault([127, 0, 0, 1]))
        #expect(!DNSBLFilter.countsByDefault([127, 255, 255, 254]), "Spamhaus: query through a public resolver")
        #expect(!DNSBLFilter.countsByDefault([127, 255, 255, 252]))
        #expect(!DNSBLFilter.countsByDefault([10, 0, 0, 2]), "outside 127/8: a wildcard or a hijacking resolver")
        #expect(!DNSBLFilter.countsByDefault([127, 0, 0]))
    }

    static func a(_ octets: [UInt8]...) -> DNSAnswer { .records(octets.map { .address($0) }, ttl: 60) }

    @Test func weightsAddUpAndANegativeWeightAllowLists() throws {
        let sites = try DNSBLSite.parseList("zen.example*3 bc.example=127.0.0.[2..11]*2 sc.example dnswl.example=127.0.[0..255].[1..3]*-4")
        let listed = DNSBLVerdict.score(client: "192.0.2.9", sites: sites, threshold: 3, answers: [
            "zen.example": Self.a([127, 0, 0, 4]), "bc.example": Self.a([127, 0, 0, 2]), "sc.example": .nxdomain, "dnswl.example": .nxdomain,
        ])
        #expect(listed.score == 5 && listed.listed && listed.zones == ["zen.example", "bc.example"] && listed.heaviest == "zen.example")
        let allowed = DNSBLVerdict.score(client: "192.0.2.9", sites: sites, threshold: 3, answers: [
            "zen.example": Self.a([127, 0, 0, 4]), "bc.example": Self.a([127, 0, 0, 2]), "dnswl.example": Self.a([127, 0, 15, 2]),
        ])
        #expect(allowed.score == 1 && !allowed.listed)
        let below = DNSBLVerdict.score(client: "192.0.2.9", sites: sites, threshold: 3, answers: ["bc.example": Self.a([127, 0, 0, 3])])
        #expect(below.score == 2 && !below.listed)
    }

    @Test func answersOutsideTheFilterNeverCount() throws {
        let sites = try DNSBLSite.parseList("zen.example bc.example=127.0.0.4")
        let v = DNSBLVerdict.score(client: "192.0.2.9", sites: sites, threshold: 1, answers: [
            "zen.example": Self.a([127, 255, 255, 254]), "bc.example": Self.a([127, 0, 0, 2]),
        ])
        #expect(v.score == 0 && !v.listed && v.zones.isEmpty)
        let ipv6Answer = DNSBLVerdict.score(client: "192.0.2.9", sites: sites, threshold: 1, answers: [
            "zen.example": .records([.address(AddressBytes.parse("::ffff:127.0.0.2")!)], ttl: 1),
        ])
        #expect(!ipv6Answer.listed, "only A answers count")
    }

    @Test func oneZoneWithSeveralFiltersCountsEachMatchingEntry() throws {
        let sites = try DNSBLSite.parseList("zen.example=127.0.0.[2..3]*2 zen.example=127.0.0.[10..11]*3 zen.example=127.0.0.4")
        let v = DNSBLVerdict.score(client: "2001:db8::5", sites: sites, threshold: 5, answers: [
            "zen.example": Self.a([127, 0, 0, 2], [127, 0, 0, 11]),
        ])
        #expect(v.score == 5 && v.listed && v.zones == ["zen.example"] && v.heaviest == "zen.example")
    }

    @Test func failedLookupsCountNothingAndAreNamed() throws {
        let sites = try DNSBLSite.parseList("a.example b.example c.example")
        let v = DNSBLVerdict.score(client: "192.0.2.9", sites: sites, threshold: 1, answers: [
            "a.example": .failure(.timeout), "b.example": .failure(.serverFailure(rcode: 2)), "c.example": .noData,
        ])
        #expect(v.score == 0 && !v.listed)
        #expect(v.failed.map(\.zone) == ["a.example", "b.example"])
    }

    @Test func theRefusalSaysWhichZoneAndTheLogHasTheScore() throws {
        let sites = try DNSBLSite.parseList("a.example b.example*2")
        let v = DNSBLVerdict.score(client: "2001:db8::5", sites: sites, threshold: 2, answers: [
            "a.example": Self.a([127, 0, 0, 2]), "b.example": Self.a([127, 0, 0, 2]),
        ])
        let r = Refusal.dnsblListed(v)
        #expect(String(decoding: ProxyReplies(proxyName: "gw").refusal(r), as: UTF8.self)
                == "554 5.7.1 Service unavailable; client [2001:db8::5] blocked using b.example\r\n")
        #expect(r.why == .dnsbl)
        let c = SessionContext(id: "s-1", listener: "main", client: "[2001:db8::5]:4000", local: "-", destination: "-")
        let line = SessionLog.record(for: .refused(c, r), policy: LogPolicy(helo: true, mailFrom: .all, rcptTo: .all))
        #expect(line?.description == "reject session=s-1 listener=main client=[2001:db8::5]:4000 reason=dnsbl score=3 threshold=2 sites=a.example,b.example")
        #expect(Finding.Kind.dnsbl(score: 3, zones: v.zones).lockCause == .dnsbl)
        #expect(Finding.Kind.dnsbl(score: 3, zones: v.zones).lockReason == "dnsbl score 3 (a.example,b.example)")
    }

    @Test func lockingOnDnsblWithoutSitesAndAnUnreachableThresholdAreWarnedAbout() throws {
        #expect(ConfigParser.warnings(try parse("lock_on dnsbl\nnat_sources 192.0.2.1\n")).contains { $0.contains("no dnsbl sites") })
        #expect(ConfigParser.warnings(try parse("dnsbl a.example*2 b.example*-3\ndnsbl_threshold 3\n")).contains { $0.contains("no client can ever be listed") })
        #expect(ConfigParser.warnings(try parse("dnsbl a.example*2 b.example\ndnsbl_threshold 3\n")).isEmpty)
    }

    @Test func errorLinesNameTheZoneAndEscapeIt() {
        #expect(DNSBLLog.error(zone: "bl.example", .timeout, suppressed: 4).description == "dnsbl_error zone=bl.example error=timeout suppressed=4")
    }
}
