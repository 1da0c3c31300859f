import Testing
@testable import SMTPGateCore

@Suite struct ClientKeyTests {
    func bytes(_ s: String) -> [UInt8] { AddressBytes.parse(s)! }

    func parseError(_ text: String, prefix: Int = 64) -> ClientKeyError? {
        do {
            _ = try ClientKey(parsing: text, ipv6Prefix: prefix)
            return nil
        } catch {
            return error
        }
    }

    @Test func ipv4IsTheWholeAddress() {
        let key = ClientKey(address: bytes("10.0.0.5"), ipv6Prefix: 64)
        #expect(key.description == "10.0.0.5")
        #expect(key.address == [10, 0, 0, 5])
        #expect(key.ident == nil)
        #expect(key != ClientKey(address: bytes("10.0.0.6"), ipv6Prefix: 64))
    }

    @Test func mappedIPv6CountsAsIPv4() {
        let mapped = ClientKey(address: bytes("::ffff:10.0.0.5"), ipv6Prefix: 64)
        #expect(mapped == ClientKey(address: bytes("10.0.0.5"), ipv6Prefix: 64))
        #expect(mapped.description == "10.0.0.5")
    }

    @Test func ipv6IsMaskedToThePrefix() {
        let a = ClientKey(address: bytes("2001:db8:1::1"), ipv6Prefix: 64)
        let b = ClientKey(address: bytes("2001:db8:1:0:ffff:ffff:ffff:ffff"), ipv6Prefix: 64)
        #expect(a == b)
        #expect(a.hashValue == b.hashValue)
        #expect(a.description == "2001:db8:1::/64")
        #expect(a != ClientKey(address: bytes("2001:db8:1:1::1"), ipv6Prefix: 64))
        #expect(ClientKey(address: bytes("2001:db8:1:ab::1"), ipv6Prefix: 56).description == "2001:db8:1::/56")
        #expect(ClientKey(address: bytes("2001:db8::1"), ipv6Prefix: 128).description == "2001:db8::1/128")
        #expect(ClientKey(address: bytes("2001:db8::1"), ipv6Prefix: 500).prefixLength == 128)
        #expect(ClientKey(address: bytes("ff01::1"), ipv6Prefix: -3).description == "8000::/1")
    }

    @Test func identNarrowsTheKey() {
        let plain = ClientKey(address: bytes("10.0.0.5"), ipv6Prefix: 64)
        let bob = ClientKey(address: bytes("10.0.0.5"), ipv6Prefix: 64, ident: "bob")
        #expect(bob != plain)
        #expect(bob.description == "bob@10.0.0.5")
        #expect(bob.ident == "bob")
    }

    @Test func hostileIdentFromTheWireIsMadePrintable() throws {
        let key = ClientKey(address: bytes("10.0.0.5"), ipv6Prefix: 64, ident: "a b@c\u{0}\n" + String(repeating: "x", count: 100))
        #expect(key.ident == "a?b?c??" + String(repeating: "x", count: 57))
        #expect(try ClientKey(parsing: key.description, ipv6Prefix: 64) == key)
        #expect(ClientKey(address: bytes("10.0.0.5"), ipv6Prefix: 64, ident: "").ident == nil)
    }

    @Test func parsesEveryForm() throws {
        #expect(try ClientKey(parsing: "10.0.0.5", ipv6Prefix: 64).address == [10, 0, 0, 5])
        #expect(try ClientKey(parsing: "2001:db8:1::77", ipv6Prefix: 64).description == "2001:db8:1::/64")
        #expect(try ClientKey(parsing: "2001:db8:1::/64", ipv6Prefix: 64).description == "2001:db8:1::/64")
        #expect(try ClientKey(parsing: "2001:db8:1::/48", ipv6Prefix: 48).description == "2001:db8:1::/48")
        #expect(try ClientKey(parsing: "::ffff:10.0.0.5", ipv6Prefix: 64).description == "10.0.0.5")
        let bob = try ClientKey(parsing: "bob@10.0.0.5", ipv6Prefix: 64)
        #expect(bob.ident == "bob")
        #expect(bob.address == [10, 0, 0, 5])
        #expect(try ClientKey(parsing: "Al!ce_1@2001:db8:1::/64", ipv6Prefix: 64).ident == "Al!ce_1")
    }

    @Test func descriptionRoundTrips() throws {
        for text in ["10.0.0.5", "0.0.0.0", "255.255.255.255", "2001:db8:1::/64", "::/64", "bob@10.0.0.5", "x@2001:db8::/64"] {
            let key = try ClientKey(parsing: text, ipv6Prefix: 64)
            #expect(key.description == text)
            #expect(try ClientKey(parsing: key.description, ipv6Prefix: 64) == key)
        }
    }

    @Test func wrongPrefixLengthNamesTheExpectedOne() {
        #expect(parseError("2001:db8:1::/48") == .wrongPrefixLength("2001:db8:1::/48", expected: 64))
        #expect(parseError("2001:db8:1::/48")?.description == "\"2001:db8:1::/48\" must be a /64 prefix (the configured IPv6 client prefix)")
        #expect(parseError("2001:db8:1::/128") == .wrongPrefixLength("2001:db8:1::/128", expected: 64))
        #expect(parseError("2001:db8:1::/") == .wrongPrefixLength("2001:db8:1::/", expected: 64))
        #expect(parseError("2001:db8:1::/0064") == .wrongPrefixLength("2001:db8:1::/0064", expected: 64))
        #expect(parseError("2001:db8:1::/+64") == .wrongPrefixLength("2001:db8:1::/+64", expected: 64))
        #expect(parseError("2001:db8:1::/-64") == .wrongPrefixLength("2001:db8:1::/-64", expected: 64))
        #expect(parseError("2001:db8:1::/99999999999999999999999") == .wrongPrefixLength("2001:db8:1::/99999999999999999999999", expected: 64))
        #expect(parseError("2001:db8:1::1/64") == .hostBitsSet("2001:db8:1::1/64"))
    }

    @Test func hostileAddressesAreRefused() {
        for text in ["", " ", "10.0.0", "10.0.0.256", "10.0.0.5/32", "10.0.0.5 ", " 10.0.0.5", "10.0.0.5\0",
                     "10.0.0.5\0junk", "2001:db8::/64/64", "::ffff:10.0.0.5/64", "-1", "99999999999999999999",
                     "10.0.0.5@bob", String(repeating: "1", count: 100_000), "\u{7}10.0.0.5", "bob@", "bob@@10.0.0.5"] {
            #expect(parseError(text) == .badAddress(text), "\(text.debugDescription)")
        }
    }

    @Test func hostileIdentsAreRefused() {
        for text in ["@10.0.0.5", "a b@10.0.0.5", "a\0b@10.0.0.5", "a\tb@10.0.0.5", "\u{7f}@10.0.0.5", "é@10.0.0.5",
                     String(repeating: "x", count: 65) + "@10.0.0.5"] {
            #expect(parseError(text) == .badIdent(text), "\(text.debugDescription)")
        }
        #expect(parseError(String(repeating: "x", count: 64) + "@10.0.0.5") == nil)
    }

    @Test func errorsAreOneLineAndPrintable() {
        let hostile = "\u{0}\n\u{1b}[31m" + String(repeating: "9", count: 10_000)
        let message = parseError(hostile)?.description ?? ""
        #expect(message.hasPrefix("not an IPv4 address, IPv6 address or IPv6 prefix: \"???[31m999"))
        #expect(message.utf8.allSatisfy { $0 >= 0x20 && $0 < 0x7f })
        #expect(message.utf8.count < 160)
        #expect(parseError("a b@10.0.0.5")?.description
            == "bad ident in \"a b@10.0.0.5\": expected 1 to 64 printable ASCII characters without space or @")
    }

    @Test func exemptionLooksAtTheKeyAddress() throws {
        let list = AllowList([try CIDR(parsing: "10.0.0.0/24"), try CIDR(parsing: "2001:db8:1::/48")])
        #expect(ClientKey(address: bytes("10.0.0.77"), ipv6Prefix: 64, ident: "bob").isExempt(list))
        #expect(!ClientKey(address: bytes("10.0.1.77"), ipv6Prefix: 64).isExempt(list))
        #expect(ClientKey(address: bytes("2001:db8:1:5::1"), ipv6Prefix: 64).isExempt(list))
        #expect(!ClientKey(address: bytes("2001:db8:2::1"), ipv6Prefix: 64).isExempt(list))
        #expect(!ClientKey(address: bytes("10.0.0.77"), ipv6Prefix: 64).isExempt(AllowList([])))
    }

    @Test func ordersByDescription() throws {
        let keys = try ["b@10.0.0.1", "10.0.0.2", "10.0.0.10", "2001:db8::/64"].map { try ClientKey(parsing: $0, ipv6Prefix: 64) }
        #expect(keys.sorted().map(\.description) == ["10.0.0.10", "10.0.0.2", "2001:db8::/64", "b@10.0.0.1"])
    }
}
