import Testing
@testable import SMTPGateCore

/// access(5) lookup orders, and `AccessMaps.lookup`'s DUNNO and pattern-table rules.
@Suite("access map keys")
struct AccessMapKeysTests {
    func table(_ spec: String, _ text: String) throws -> any AccessTable {
        try AccessMaps.load(spec) { _ in Array(text.utf8) }
    }

    @Test func addressOrder() {
        #expect(AccessKeys.address("user@sub.example.com") == ["user@sub.example.com", "sub.example.com", "example.com", "com", "user@"])
        #expect(AccessKeys.address("<User@Example.COM>") == ["User@Example.COM", "Example.COM", "COM", "User@"], "case kept for pattern tables")
        #expect(AccessKeys.address("user+tag@example.com") == ["user+tag@example.com", "example.com", "com", "user+tag@"],
                "no recipient delimiter")
        #expect(AccessKeys.address("user@[192.0.2.1]") == ["user@[192.0.2.1]", "[192.0.2.1]", "user@"])
        #expect(AccessKeys.address("<@relay.example,@b.example:user@example.com>") == ["user@example.com", "example.com", "com", "user@"])
        #expect(AccessKeys.address("a@b@example.com") == ["a@b@example.com", "example.com", "com", "a@b@"], "the last @ splits")
    }

    @Test func nullSenderAndAddressesWithoutDomain() {
        #expect(AccessKeys.address("<>") == ["<>"])
        #expect(AccessKeys.address("") == ["<>"])
        #expect(AccessKeys.address("postmaster") == ["postmaster", "postmaster@"])
        #expect(AccessKeys.address("user@") == ["user@"])
    }

    @Test func hostnameOrder() {
        #expect(AccessKeys.hostname("mail.example.com") == ["mail.example.com", "example.com", "com"])
        #expect(AccessKeys.hostname("mail.example.com.") == ["mail.example.com.", "example.com.", "com."])
        #expect(AccessKeys.hostname("localhost") == ["localhost"])
        #expect(AccessKeys.hostname("192.0.2.1") == ["192.0.2.1"], "no subdomain search for numerical names")
        #expect(AccessKeys.hostname("[192.0.2.1]") == ["[192.0.2.1]"])
        #expect(AccessKeys.hostname("[IPv6:2001:db8::1]") == ["[IPv6:2001:db8::1]"])
        #expect(AccessKeys.hostname("") == [])
        #expect(AccessKeys.hostname("a..b") == ["a..b", ".b"], "what follows each dot after the first character, as Postfix")
    }

    @Test func clientOrder() {
        #expect(AccessKeys.client(name: "mail.example.com", address: "192.0.2.1")
                == ["mail.example.com", "example.com", "com", "192.0.2.1", "192.0.2", "192.0", "192"])
        #expect(AccessKeys.client(name: nil, address: "2001:DB8:0::1") == ["2001:db8::1", "2001:db8:", "2001:db8", "2001"])
        #expect(AccessKeys.client(name: nil, address: "1:2:3:4:5:6:7:8")
                == ["1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7", "1:2:3:4:5:6", "1:2:3:4:5", "1:2:3:4", "1:2:3", "1:2", "1"])
        #expect(AccessKeys.client(name: nil, address: "::ffff:192.0.2.1") == ["192.0.2.1", "192.0.2", "192.0", "192"])
        #expect(AccessKeys.client(name: nil, address: "[2001:db8::1]").first == "2001:db8::1")
        #expect(AccessKeys.client(name: nil, address: "::1") == ["::1", ":"])
        #expect(AccessKeys.client(name: "unknown", address: "192.0.2.1").first == "unknown", "Postfix looks the name unknown up")
        #expect(AccessKeys.client(name: nil, address: "not-an-ip") == ["not-an-ip"])
    }

    @Test func hostileNamesMakeFewKeys() {
        let long = repeated("a.", 2_000) + "example"
        #expect(AccessKeys.hostname(long) == [long])
        #expect(AccessKeys.address("u@" + long).count == 3)
        let dots = repeated(".", 200)
        #expect(AccessKeys.hostname(dots).count <= 200)
        #expect(AccessKeys.client(name: nil, address: repeated("1.", 3_000)) .count == 1)
    }

    @Test func firstKeyFoundWinsAndDunnoStops() throws {
        let t = try table("texthash:/t", "example.com DUNNO\ncom REJECT\nuser@ OK\nsub.example.com WARN w\n")
        #expect(AccessMaps.lookup(t, keys: AccessKeys.hostname("a.example.com")) == .found(.dunno), "DUNNO: the parent com is not tried")
        #expect(AccessMaps.lookup(t, keys: AccessKeys.hostname("a.b.com")) == .found(.reject(AccessReply(code: 554, enhanced: "5.7.1"))))
        #expect(AccessMaps.lookup(t, keys: AccessKeys.hostname("x.sub.example.com")) == .found(.warn("w")))
        #expect(AccessMaps.lookup(t, keys: AccessKeys.address("user@example.net")) == .found(.ok))
        #expect(AccessMaps.lookup(t, keys: []) == .notFound)
    }

    @Test func patternTablesGetOnlyTheFullKey() throws {
        let r = try table("regexp:/t", "/^com$/ REJECT\n/^user@$/ REJECT\n")
        #expect(AccessMaps.lookup(r, keys: AccessKeys.hostname("a.com")) == .notFound)
        #expect(AccessMaps.lookup(r, keys: AccessKeys.address("user@example.com")) == .notFound)
        let c = try table("cidr:/t", "192.0.2.0/24 OK\n")
        #expect(AccessMaps.lookup(c, keys: AccessKeys.client(name: nil, address: "192.0.2.9")) == .found(.ok))
        #expect(AccessMaps.lookup(c, keys: AccessKeys.client(name: "mail.example.com", address: "192.0.2.9")) == .notFound,
                "keys[0] is the name: use lookupClient")
    }

    @Test func lookupClientAsksPatternTablesForTheNameThenTheAddress() throws {
        let c = try table("cidr:/t", "192.0.2.0/24 OK\n")
        #expect(AccessMaps.lookupClient(c, name: "mail.example.com", address: "::ffff:192.0.2.9") == .found(.ok))
        let p = try table("pcre:/t", "/\\.dyn\\.example$/ REJECT dynamic\n/^192\\.0\\.2\\./ OK\n")
        #expect(AccessMaps.lookupClient(p, name: "1-2.DYN.example", address: "192.0.2.9")
                == .found(.reject(AccessReply(code: 554, enhanced: "5.7.1", text: "dynamic"))))
        #expect(AccessMaps.lookupClient(p, name: nil, address: "192.0.2.9") == .found(.ok))
        #expect(AccessMaps.lookupClient(p, name: "mail.example.com", address: "198.51.100.1") == .notFound)
        let t = try table("texthash:/t", "192.0.2 REJECT\nexample.com OK\n")
        #expect(AccessMaps.lookupClient(t, name: "mail.example.com", address: "192.0.2.9") == .found(.ok), "the name comes first")
        #expect(AccessMaps.lookupClient(t, name: nil, address: "192.0.2.9") == .found(.reject(AccessReply(code: 554, enhanced: "5.7.1"))))
    }
}
