import Testing
@testable import SMTPGateCore

@Suite("ratelimit_override: per-customer limits")
struct RateOverridesTests {
    static let limits: [RateKind: RateLimitSpec] = [
        .messages: RateLimitSpec(windows: [RateWindow(limit: 30, seconds: 3600), RateWindow(limit: 200, seconds: 86400)]),
        .recipients: RateLimitSpec(windows: [RateWindow(limit: 100, seconds: 3600)]),
        .destinations: RateLimitSpec(windows: [RateWindow(limit: 20, seconds: 3600)]),
    ]

    func parse(_ text: String) throws -> RateOverrides {
        try RateOverrides.parse(text, file: "o.txt", limits: Self.limits)
    }

    @Test func theMostSpecificPrefixWins() throws {
        let o = try parse("""
            # business customers
            192.0.2.0/24   messages   1000/1h 5000/1d
            192.0.2.128/25 messages   0          # this one is not limited at all
            2001:db8:5::/48 recipients 400/1h
            """)
        #expect(o.count == 3)
        #expect(o.spec(for: [192, 0, 2, 7], .messages)?.windows == [RateWindow(limit: 1000, seconds: 3600), RateWindow(limit: 5000, seconds: 86400)])
        #expect(o.spec(for: [192, 0, 2, 200], .messages)?.isOff == true)
        #expect(o.spec(for: [192, 0, 2, 7], .recipients) == nil, "no line for the kind: the configured limit")
        #expect(o.spec(for: [198, 51, 100, 1], .messages) == nil)
        #expect(o.spec(for: AddressBytes.parse("2001:db8:5:9::")!, .recipients)?.windows.first?.limit == 400)
        #expect(o.spec(for: AddressBytes.parse("::ffff:192.0.2.7")!, .messages) != nil, "an IPv4-mapped client counts as IPv4")
    }

    @Test(arguments: [
        ("10.0.0.0/8 messages 10/10m", "no 600 s window"), ("10.0.0.0/8 bytes 10/1h", "ratelimit_bytes is not set"),
        ("10.0.0.1/8 messages 10/1h", "bits set after the prefix"), ("10.0.0.0/8 mails 10/1h", "unknown kind"),
        ("10.0.0.0/8 messages", "expected PREFIX KIND LIMITS"), ("10.0.0.0/8 messages -5/1h", "expected a limit"),
        ("10.0.0.0/8 messages 1/1h\n10.0.0.0/8 messages 2/1h", "given twice"),
        ("2001:db8::5/128 messages 10/1h", "longer than ratelimit_ipv6_prefix 64"),
        ("10.0.0.0/8 destinations 50/1h", "can only lower the limit"),
    ])
    func badLinesNameFileAndLine(_ text: String, _ fragment: String) {
        #expect {
            _ = try parse(text)
        } throws: { e in
            guard let e = e as? ConfigError else { return false }
            return e.file == "o.txt" && e.line != nil && e.message.contains(fragment)
        }
    }

    @Test func anOverlongFileIsRefused() {
        #expect(throws: ConfigError.self) { _ = try parse(String(repeating: "#", count: RateOverrides.maxBytes + 1)) }
    }
}
