import Foundation
import Testing
@testable import SMTPGateCore

@Suite struct ForwardAddressPatternTests {
    func p(_ s: String) throws -> AddressPattern { try AddressPattern(parsing: s) }

    func refusal(_ s: String) -> String? {
        do { _ = try AddressPattern(parsing: s); return nil } catch { return error.message }
    }

    @Test func ipv4WildcardTable() throws {
        let table: [(String, String, Bool)] = [
            ("192.168.1.*", "192.168.1.5", true),
            ("192.168.1.*", "192.168.1.255", true),
            ("192.168.1.*", "192.168.10.5", false),
            ("192.168.1.*", "192.168.1.", true),  // * may be empty, as in rinetd
            ("192.168.1.*", "10.192.168.1.5", false),
            ("10.?.0.1", "10.5.0.1", true),
            ("10.?.0.1", "10.55.0.1", false),
            ("10.?.0.1", "10..0.1", false),
            ("*", "192.0.2.1", true),
            ("*", "fd77::1", true),
            ("*.1", "10.0.0.1", true),
            ("*.1", "10.0.0.11", false),
            ("10.*.1", "10.0.0.1", true),
            ("10.*.1", "10.1", false),  // the segments may not overlap
            ("1*1", "1", false),
            ("1*1", "11", true),
            ("10.0.0.1", "10.0.0.1", true),
            ("10.0.0.1", "10.0.0.10", false),
            ("10.0.0.1?", "10.0.0.1", false),
        ]
        for (pattern, address, expected) in table {
            #expect(try p(pattern).matches(address) == expected, "\(pattern) vs \(address)")
        }
    }

    @Test func ipv6IsMatchedAsInetNtopWritesIt() throws {
        #expect(try p("fd77::*").matches("fd77::1"))
        #expect(try p("fd77:2::*").matches("fd77:2::a:1"))
        #expect(try !p("fd77:2::*").matches("fd77:3::1"))
        #expect(try p("::1").matches("::1"))
        #expect(try p("fe80::?").matches("fe80::a"))
        // Case-sensitive and without brackets, as rinetd: these never match (and are warned about).
        #expect(try !p("FD77::*").matches("fd77::1"))
        #expect(try !p("[::1]").matches("::1"))
        // A non-canonical literal is compared as text, like rinetd.
        #expect(try !p("fd77:0::1").matches("fd77::1"))
    }

    @Test func cidrMatchesByValue() throws {
        let v4 = try p("10.0.0.0/8")
        #expect(v4.matches("10.200.3.4"))
        #expect(!v4.matches("11.0.0.1"))
        #expect(!v4.matches("fd77::1"))
        #expect(!v4.matches("not an address"))
        let v6 = try p("fd77::/48")
        #expect(v6.matches("fd77::1"))
        #expect(v6.matches("fd77:0:0:ffff::1"))
        #expect(!v6.matches("fd77:1::1"))
        #expect(!v6.matches("10.0.0.1"))
        #expect(v6.description == "fd77::/48")
        #expect(try p("0.0.0.0/0").matchesEverything)
        #expect(try p("**").matchesEverything)
        #expect(try !p("10.*").matchesEverything)
        #expect(try p("192.0.2.*").impliedIPv4Prefix?.description == "192.0.2.0/24")
        #expect(try p("10.?.*").impliedIPv4Prefix?.description == "10.0.0.0/8")
        #expect(try p("10*").impliedIPv4Prefix == nil)
        #expect(try p("010.1.*").impliedIPv4Prefix == nil)
    }

    @Test func descriptionIsTheSourceText() throws {
        #expect(try p("10.?.0.*").description == "10.?.0.*")
        #expect(try p("FD77::*").description == "FD77::*")
        #expect(try p("fd77:0::/48").description == "fd77:0::/48")
    }

    @Test func refusalsSayWhatIsAllowed() {
        #expect(refusal("") == "an allow/deny pattern must not be empty")
        #expect(refusal(String(repeating: "1", count: 101)) == "an allow/deny pattern is at most 100 characters, got 101")
        #expect(refusal("mail.example.com") == "an allow/deny pattern may hold only hex digits, '.', ':', '[', ']', '*' and '?', or be a CIDR prefix such as 10.0.0.0/8; 'mail.example.com' has 'm' (patterns match the client's address, not its name: write the address)")
        #expect(refusal("10.0.0.1 junk") == "an allow/deny pattern may hold only hex digits, '.', ':', '[', ']', '*' and '?', or be a CIDR prefix such as 10.0.0.0/8; '10.0.0.1 junk' has ' '")
        #expect(refusal("10.0.0.1\n") == "an allow/deny pattern may hold only hex digits, '.', ':', '[', ']', '*' and '?', or be a CIDR prefix such as 10.0.0.0/8; '10.0.0.1\\x0a' has '\\x0a'")
        #expect(refusal("10.0.0.*/8") == "'10.0.0.*/8' mixes a CIDR prefix with wildcards: write either 10.0.0.0/8 or 10.*")
        #expect(refusal("10.0.0.1/8") == "\"10.0.0.1/8\" has bits set after the prefix length (did you mean the network address?)")
        #expect(refusal("10.0.0.0/33") == "bad prefix length in \"10.0.0.0/33\"")
        #expect(refusal("10.0.0.0//8") == "bad prefix length in \"10.0.0.0//8\"")
        #expect(refusal("é") != nil)
    }

    @Test func hostilePatternIsFastOnLongInput() throws {
        let hostile = try p(String(repeating: "*?", count: 50))
        let long = String(repeating: "1", count: 100_000)
        let start = Date()
        #expect(hostile.matches(long))  // 50 or more characters
        #expect(!hostile.matches(String(repeating: "1", count: 49)))
        // Backtracking matchers take exponential time on these; leftmost placement does not.
        let nearMiss = try p(String(repeating: "*1", count: 48) + "*2*")
        #expect(!nearMiss.matches(long))
        let suffix = try p(String(repeating: "*1?", count: 33) + "2")
        #expect(!suffix.matches(long))
        #expect(Date().timeIntervalSince(start) < 5)
    }
}
