import Testing
@testable import SMTPGateCore

@Suite struct DNSRdataTests {
    static func name(_ labels: [String]) -> [UInt8] {
        labels.flatMap { [UInt8($0.utf8.count)] + Array($0.utf8) } + [0]
    }

    @Test func wellFormedDataDecodes() {
        #expect(DNSRdata.decode(.a, [127, 0, 0, 2]) == .address([127, 0, 0, 2]))
        #expect(DNSRdata.decode(.txt, [3] + Array("v=s".utf8) + [4] + Array("pf1 ".utf8)) == .text(Array("v=spf1 ".utf8)))
        #expect(DNSRdata.decode(.txt, [0]) == .text([]))
        #expect(DNSRdata.decode(.mx, [0, 10] + Self.name(["mx", "example", "test"])) == .mx(preference: 10, exchange: "mx.example.test"))
        #expect(DNSRdata.decode(.mx, [0, 0] + [0]) == .mx(preference: 0, exchange: "."), "null MX (RFC 7505)")
        #expect(DNSRdata.decode(.ptr, Self.name(["host", "test"])) == .ptr("host.test"))
    }

    @Test(arguments: [
        (DNSType.a, [127, 0, 0] as [UInt8]), (.a, [1, 2, 3, 4, 5]), (.aaaa, [UInt8](repeating: 0, count: 15)),
        (.txt, []), (.txt, [5, 65, 65]), (.mx, [0]), (.mx, [0, 10, 2, 65]), (.mx, [0, 10, 0xc0, 12]),
        (.ptr, [3, 65, 0x2e, 65, 0]), (.ptr, [2, 65, 0x0a, 0]), (.ptr, [64] + [UInt8](repeating: 65, count: 64) + [0]),
        (.ptr, [1, 65, 0, 1]), (.ptr, []),
    ])
    func hostileDataIsRefused(_ type: DNSType, _ data: [UInt8]) {
        #expect(DNSRdata.decode(type, data) == nil)
    }

    @Test func namesAndTextsAreBounded() {
        let label: [UInt8] = [63] + [UInt8](repeating: 97, count: 63)
        let long: [UInt8] = (0..<5).flatMap { _ in label } + [0]
        #expect(DNSRdata.decode(.ptr, long) == nil, "over 255 bytes")
        let chunk: [UInt8] = [255] + [UInt8](repeating: 97, count: 255)
        let text: [UInt8] = (0..<20).flatMap { _ in chunk }
        #expect(DNSRdata.decode(.txt, text) == nil, "over maxTextBytes")
    }

    @Test func blocklistNamesAreReversed() {
        #expect(DNSName.reversed([192, 0, 2, 99], zone: "bl.test.") == "99.2.0.192.bl.test")
        #expect(DNSName.reversed(AddressBytes.parse("::ffff:192.0.2.99")!, zone: "bl.test") == "99.2.0.192.bl.test")
        #expect(DNSName.reversed(AddressBytes.parse("2001:db8::1")!, zone: "bl.test")
            == "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.bl.test")
        #expect(DNSName.reversed([1, 2, 3], zone: "bl.test") == nil)
        #expect(DNSName.isValid("a.b.test."))
        #expect(!DNSName.isValid(""))
        #expect(!DNSName.isValid("."))
        #expect(!DNSName.isValid(String(repeating: "a.", count: 127) + "aa"))
    }

    /// The rules as written (labels split at dots), against the one-pass check, over hostile names:
    /// empty labels, dots at either end, controls, blanks, DEL, UTF-8, labels of 63 and 64, 253 and 254 bytes.
    @Test func theOnePassNameCheckKeepsTheRules() {
        func byTheRules(_ name: String) -> Bool {
            var n = Substring(name)
            if n.hasSuffix(".") { n = n.dropLast() }
            guard !n.isEmpty, n.utf8.count <= 253 else { return false }
            return n.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { label in
                !label.isEmpty && label.utf8.count <= 63 && label.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7f }
            }
        }
        let fixed = ["a", "a.", "a..", "..", ".a", "a..b", "a.b.", "a.b..", "\u{7f}", "a b", "é.test", "a\u{0}.b",
                     String(repeating: "x", count: 63) + ".t", String(repeating: "x", count: 64) + ".t",
                     String(repeating: "x", count: 63) + "." + String(repeating: "y", count: 63) + "." + String(repeating: "z", count: 63)
                         + "." + String(repeating: "w", count: 61),
                     String(repeating: "x", count: 63) + "." + String(repeating: "y", count: 63) + "." + String(repeating: "z", count: 63)
                         + "." + String(repeating: "w", count: 62)]
        var rng = SystemRandomNumberGenerator()
        let alphabet: [Character] = ["a", "Z", "0", "-", ".", ".", ".", " ", "\u{1}", "\u{7f}", "é", "_", "*"]
        let random = (0..<3000).map { _ in
            String((0..<Int.random(in: 0...80, using: &rng)).map { _ in alphabet.randomElement(using: &rng)! })
        }
        for name in fixed + random {
            #expect(DNSName.isValid(name) == byTheRules(name), "\(Array(name.utf8))")
        }
        #expect(fixed.map(DNSName.isValid).filter { $0 }.count == 5, "a, a., a.b., x{63}.t and 253 bytes are names")
    }
}
