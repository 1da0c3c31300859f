import Testing
@testable import SMTPGateCore

@Suite struct RateLimitSpecTests {
    func parse(_ v: String, defaultSeconds: Int = 3600) throws -> [RateWindow] {
        try RateLimitSpec.parse(v, defaultSeconds: defaultSeconds).windows
    }

    func message(_ v: String, defaultSeconds: Int = 3600) -> String? {
        do {
            _ = try RateLimitSpec.parse(v, defaultSeconds: defaultSeconds)
            return nil
        } catch {
            return error.message
        }
    }

    @Test func zeroIsOff() throws {
        let spec = try RateLimitSpec.parse("0", defaultSeconds: 3600)
        #expect(spec.isOff)
        #expect(spec.windows.isEmpty)
        #expect(RateLimitSpec.show(spec) == "0")
        #expect(try parse(" 0 ").isEmpty)
    }

    @Test func aBareNumberUsesTheDefaultWindow() throws {
        #expect(try parse("150", defaultSeconds: 86400) == [RateWindow(limit: 150, seconds: 86400)])
        #expect(try parse("1000000000000") == [RateWindow(limit: 1_000_000_000_000, seconds: 3600)])
    }

    @Test func windowsWithUnitsShortestFirst() throws {
        #expect(try parse("150/86400 10/60") == [RateWindow(limit: 10, seconds: 60), RateWindow(limit: 150, seconds: 86400)])
        #expect(try parse("10/1m\t150/1d") == [RateWindow(limit: 10, seconds: 60), RateWindow(limit: 150, seconds: 86400)])
        #expect(try parse("5/30s 50/2H 500/31d 20/1M") == [
            RateWindow(limit: 5, seconds: 30), RateWindow(limit: 20, seconds: 60),
            RateWindow(limit: 50, seconds: 7200), RateWindow(limit: 500, seconds: 31 * 86400),
        ])
        #expect(try parse("10 20/1m", defaultSeconds: 600) == [RateWindow(limit: 20, seconds: 60), RateWindow(limit: 10, seconds: 600)])
    }

    @Test func showRoundTrips() throws {
        for text in ["10/1m 150/1d", "7/90", "3/1h", "1000000000000/31d 1/1"] {
            let spec = try RateLimitSpec.parse(text, defaultSeconds: 60)
            #expect(try RateLimitSpec.parse(RateLimitSpec.show(spec), defaultSeconds: 60) == spec)
        }
        #expect(RateLimitSpec.show(try RateLimitSpec.parse("150/86400 10/60 5/90", defaultSeconds: 1)) == "10/1m 5/90 150/1d")
    }

    @Test func bounds() throws {
        #expect(message("1000000000001") == "expected a limit from 1 to 1000000000000 (or 0 alone for off), got \"1000000000001\"")
        #expect(message("10/0") == "expected a window of 1 second to 31 days (digits with an optional s, m, h or d), got \"10/0\"")
        #expect(message("10/32d") != nil)
        #expect(message("10/2678401") != nil)
        #expect(try parse("10/2678400") == [RateWindow(limit: 10, seconds: 2_678_400)])
        #expect(message("1/1 2/2 3/3 4/4 5/5") == "at most 4 windows, got 5 in \"1/1 2/2 3/3 4/4 5/5\"")
        #expect(message("10/60 20/1m") == "two windows of 60 seconds in \"10/60 20/1m\"")
        #expect(message("10", defaultSeconds: 0) == "\"10\" has no /SECONDS and the default window (0 s) is not 1 second to 31 days")
    }

    @Test func hostileValues() {
        for v in ["", " ", "-1", "-10/60", "10/-60", "+10", "10/+60", "0 10/60", "0/60", "10/", "/60", "10//60", "10/60/60",
                  "10/1w", "10/m", "10/1ms", "1e3", "0x10", "10.5/60", "10/60.5", "10\0/60", "10/60\0", "\u{7}10",
                  "99999999999999999999999999999", "10/99999999999999999999999", "10/9999999999999d", "１０/60", "ten/60"] {
            #expect(message(v) != nil, "\(v.debugDescription)")
        }
        let long = String(repeating: "1", count: 100_000)
        let m = message(long) ?? ""
        #expect(m.hasPrefix("rate limit is too long: \"1111"))
        #expect(m.utf8.count < 120)
        #expect(message("10/60\n")?.utf8.allSatisfy { $0 >= 0x20 && $0 < 0x7f } == true)
    }
}
