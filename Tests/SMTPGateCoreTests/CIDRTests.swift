import Testing
@testable import SMTPGateCore

@Suite struct CIDRTests {
    func bytes(_ s: String) -> [UInt8] { AddressBytes.parse(s)! }

    @Test func ipv4Prefixes() throws {
        let net = try CIDR(parsing: "10.77.0.0/16")
        #expect(net.contains(bytes("10.77.2.10")))
        #expect(net.contains(bytes("10.77.255.255")))
        #expect(!net.contains(bytes("10.78.0.1")))
        #expect(!net.contains(bytes("fd77::1")))
        #expect(net.description == "10.77.0.0/16")
        let odd = try CIDR(parsing: "192.168.1.128/25")
        #expect(odd.contains(bytes("192.168.1.200")))
        #expect(!odd.contains(bytes("192.168.1.127")))
    }

    @Test func bareAddressIsAHostPrefix() throws {
        let host = try CIDR(parsing: "10.77.2.10")
        #expect(host.prefixLength == 32)
        #expect(host.contains(bytes("10.77.2.10")))
        #expect(!host.contains(bytes("10.77.2.11")))
        let host6 = try CIDR(parsing: "fd77:2::10")
        #expect(host6.prefixLength == 128)
        #expect(host6.contains(bytes("fd77:2:0:0::10")))
        #expect(!host6.contains(bytes("fd77:2::11")))
    }

    @Test func ipv6Prefixes() throws {
        let net = try CIDR(parsing: "fd77:2::/64")
        #expect(net.contains(bytes("fd77:2::10")))
        #expect(net.contains(bytes("fd77:2::ffff:ffff:ffff:ffff")))
        #expect(!net.contains(bytes("fd77:3::10")))
        #expect(!net.contains(bytes("10.77.2.10")))
        let odd = try CIDR(parsing: "2001:db8:ab00::/41")
        #expect(odd.contains(bytes("2001:db8:ab7f::1")))
        #expect(!odd.contains(bytes("2001:db8:ab80::1")))
        #expect(try CIDR(parsing: "[fd77::1]").prefixLength == 128)
    }

    @Test func everythingPrefixesStayInTheirFamily() throws {
        let all4 = try CIDR(parsing: "0.0.0.0/0")
        #expect(all4.contains(bytes("203.0.113.9")))
        #expect(!all4.contains(bytes("::1")))
        let all6 = try CIDR(parsing: "::/0")
        #expect(all6.contains(bytes("::1")))
        #expect(!all6.contains(bytes("127.0.0.1")))
    }

    @Test func ipv4MappedSourcesMatchIPv4Prefixes() throws {
        let net = try CIDR(parsing: "10.77.2.0/24")
        #expect(net.contains(bytes("::ffff:10.77.2.10")))
        #expect(!net.contains(bytes("::ffff:10.77.3.10")))
        let mapped = try CIDR(parsing: "::ffff:10.77.2.0/120")
        #expect(mapped.description == "10.77.2.0/24")
        #expect(mapped.contains(bytes("10.77.2.99")))
        #expect(mapped.contains(bytes("::ffff:10.77.2.99")))
    }

    @Test func hostBitsAreRefused() {
        #expect(throws: CIDR.ParseError.hostBitsSet("10.0.0.1/8")) { try CIDR(parsing: "10.0.0.1/8") }
        #expect(throws: CIDR.ParseError.hostBitsSet("fd77::1/64")) { try CIDR(parsing: "fd77::1/64") }
    }

    @Test(arguments: [
        "", "/", "/8", "10.0.0.0/", "10.0.0.0/33", "fd77::/129", "10.0.0.0/-1", "10.0.0.0/+8", "10.0.0.0/8/8",
        "10.0.0.0/ 8", " 10.0.0.0/8", "10.0.0.0/8 ", "10.0.0.0/0x8", "10.0.0.0/1000", "10.0.0", "10.0.0.256",
        "10.0.0.0\u{0}/8", "10.0.0.0/8\u{0}", "10.0.0.1\u{0}junk", "localhost", "example.org/24", "１０.0.0.0/8",
        "10.0.0.0/８", "fd77::/6４", "[10.0.0.1]", "fd77:::1", "fd77::1%eth0", "::ffff:10.0.0.0/95x",
        String(repeating: "1", count: 10_000), String(repeating: "::", count: 500) + "/8", "\u{202e}10.0.0.0/8",
    ])
    func hostileStringsAreRefused(_ text: String) {
        #expect(throws: CIDR.ParseError.self) { try CIDR(parsing: text) }
    }

    @Test func errorsShowTheInputSafely() {
        do {
            _ = try CIDR(parsing: "10.0.0.0\n/8\u{1b}[31m")
            Issue.record("accepted")
        } catch {
            #expect(!error.description.contains("\n"))
            #expect(!error.description.contains("\u{1b}"))
        }
    }

    @Test func allowList() throws {
        let list = AllowList([try CIDR(parsing: "10.77.2.10"), try CIDR(parsing: "fd77:2::/64")])
        #expect(list.allows(bytes("10.77.2.10")))
        #expect(list.allows(bytes("::ffff:10.77.2.10")))
        #expect(list.allows(bytes("fd77:2::10")))
        #expect(!list.allows(bytes("10.77.2.11")))
        #expect(!list.allows(bytes("127.0.0.1")))
        #expect(!AllowList([]).allows(bytes("10.77.2.10")))
        #expect(!list.allows([1, 2, 3]))
    }

    @Test func addressBytesRoundTrip() {
        #expect(AddressBytes.format(bytes("fd77:2:0:0:0:0:0:10")) == "fd77:2::10")
        #expect(AddressBytes.format(bytes("10.77.2.1"), port: 114) == "10.77.2.1:114")
        // IPv4 is formatted without inet_ntop: every octet value in every position
        for v in 0...255 {
            let o = UInt8(v)
            #expect(AddressBytes.format([o, 0, 255, o]) == "\(v).0.255.\(v)")
            #expect(AddressBytes.format([9, o, o, 100]) == "9.\(v).\(v).100")
            #expect(AddressBytes.parse(AddressBytes.format([o, o, o, o])) == [o, o, o, o])
        }
        #expect(AddressBytes.format(bytes("::1"), port: 114) == "[::1]:114")
        #expect(AddressBytes.unmapped(bytes("::ffff:1.2.3.4")) == [1, 2, 3, 4])
        #expect(AddressBytes.unmapped(bytes("::1.2.3.4")).count == 16)
    }
}
