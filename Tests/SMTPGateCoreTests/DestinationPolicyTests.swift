import Testing
@testable import SMTPGateCore

@Suite("destination_restrictions")
struct DestinationPolicyTests {
    func policy(_ list: String, _ map: String, spec: String = "cidr:/d") throws -> DestinationPolicy {
        let table = try AccessMaps.load(spec, redirects: true) { _ in Array(map.utf8) }
        return DestinationPolicy(list: try DestinationRestriction.parseList(list), maps: AccessMapSet(destinationTables: [spec: table]))
    }

    @Test func aMapPermitsRefusesOrRedirectsByTheRealDestination() throws {
        let p = try policy("check_destination_access cidr:/d, permit",
                           "192.0.2.0/24 REDIRECT 198.51.100.25\n203.0.113.0/24 REJECT direct mail is not allowed, use smtp.isp.example\n"
                           + "198.51.100.0/24 OK\n2001:db8::/32 REDIRECT [2001:db8::25]:587\n")
        #expect(p.verdict("192.0.2.10") == .redirect(host: "198.51.100.25", port: 25, rule: "destination_restrictions check_destination_access cidr:/d"))
        #expect(p.verdict("2001:db8::1") == .redirect(host: "2001:db8::25", port: 587, rule: "destination_restrictions check_destination_access cidr:/d"))
        #expect(p.verdict("203.0.113.9") == .refuse(code: 554, enhanced: "5.7.1",
                                                    text: "Service unavailable; destination [203.0.113.9] rejected: direct mail is not allowed, use smtp.isp.example",
                                                    rule: "destination_restrictions check_destination_access cidr:/d"))
        #expect(p.verdict("198.51.100.7") == .pass)
        #expect(p.verdict("10.1.2.3") == .pass, "not in the map: the next entry permits")
        let strict = try policy("check_destination_access cidr:/d, reject", "198.51.100.0/24 OK\n")
        #expect(strict.verdict("198.51.100.7") == .pass)
        #expect(strict.verdict("10.1.2.3") == .refuse(code: 554, enhanced: "5.7.1",
                                                      text: "Service unavailable; destination [10.1.2.3] rejected: Access denied",
                                                      rule: "destination_restrictions reject"))
    }

    @Test(arguments: ["192.0.2.0/24 REDIRECT mx.isp.example", "192.0.2.0/24 REDIRECT 198.51.100.25:0", "192.0.2.0/24 REDIRECT [2001:db8::25]:x"])
    func aRedirectNeedsAnAddressAndAPort(_ line: String) {
        #expect(throws: AccessMapError.self) { try AccessMaps.load("cidr:/d", redirects: true) { _ in Array((line + "\n").utf8) } }
    }

    @Test func redirectIsAnActionOnlyForDestinationMaps() {
        #expect {
            try AccessMaps.load("cidr:/s") { _ in Array("192.0.2.0/24 REDIRECT 198.51.100.25\n".utf8) }
        } throws: { e in String(describing: e).contains("/s:1:") && String(describing: e).contains("check_destination_access maps only") }
        #expect(throws: AccessMapError.self) { try AccessMaps.load("pcre:/d", redirects: true) { _ in Array("/x/ OK\n".utf8) } }
    }

    @Test func theListParsesAndShowsBack() throws {
        let c = try ConfigParser.parse("mode fixed\nfixed_server 192.0.2.25\ndestination_restrictions check_destination_access cidr:/etc/d, permit\n", file: "t.conf")
        #expect(c.destinationRestrictions == [.checkDestinationAccess(map: "cidr:/etc/d"), .permit])
        #expect(ConfigParser.render(c).contains("\ndestination_restrictions check_destination_access cidr:/etc/d, permit\n"))
        #expect(throws: (any Error).self) { try ConfigParser.parse("mode fixed\nfixed_server 192.0.2.25\ndestination_restrictions redirect\n", file: "t.conf") }
        #expect(throws: DestinationRestriction.ParseError.self) { try DestinationRestriction.parseList("check_destination_access") }
    }
}
