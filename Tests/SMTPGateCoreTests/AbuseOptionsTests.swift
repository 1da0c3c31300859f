import Testing
@testable import SMTPGateCore

@Suite("Abuse control options")
struct AbuseOptionsTests {
    static let base = "mode fixed\nfixed_server 192.0.2.25\n"

    func parse(_ lines: String) throws -> Config {
        try ConfigParser.parse(Self.base + lines, file: "t.conf")
    }

    @Test func defaultsLockNobodyAndLimitNothing() throws {
        let c = try parse("")
        #expect(c.lockOn.isEmpty && c.maxLoad == 0 && c.rateLimits.isEmpty && !c.abuseControl)
        let shown = ConfigParser.render(c)
        #expect(shown.contains("\nlock_on never\n") && shown.contains("\nmax_load 0\n") && shown.contains("\nratelimit_messages 0\n"))
    }

    @Test func aBareLimitTakesRatelimitExpirationWhereverItIsSet() throws {
        let c = try parse("ratelimit_messages 10\nratelimit_expiration 600\nratelimit_recipients 5/1m 100/1d\n")
        #expect(c.rateLimits[.messages] == RateLimitSpec(windows: [RateWindow(limit: 10, seconds: 600)]))
        #expect(c.rateLimits[.recipients]?.windows.count == 2)
        #expect(c.abuseControl)
        let again = try parse(ConfigParser.render(c).split(separator: "\n").filter {
            $0.hasPrefix("ratelimit_") }.joined(separator: "\n") + "\n")
        #expect(again.rateLimits == c.rateLimits, "check-config's output reads back the same")
    }

    @Test(arguments: [
        ("lock_on virus,bogus", 3), ("lock_duration -2", 3), ("lock_exempt 10.0.0.1/8", 3), ("nat_sources x", 3),
        ("ratelimit_messages 10/0", 3), ("ratelimit_bytes -1", 3), ("lock_ipv6_prefix 129", 3), ("max_load nan", 3),
        ("state_store postgresql://db/smtpgate", 3), ("control_path /" + String(repeating: "a", count: 120), 3),
    ])
    func badValuesNameTheLine(_ line: String, _ lineNo: Int) {
        #expect {
            _ = try parse(line + "\n")
        } throws: { e in
            guard let e = e as? ConfigError else { return false }
            return e.line == lineNo && e.message.hasPrefix("option '")
        }
    }

    @Test func smtpGatedLockOptionsAreAccepted() throws {
        let c = try parse("lock_on virus,spam,maxhost\nlock_duration -1\nlock_path /var/spool/smtp-gated/lock\n"
            + "ratelimit_path /var/spool/smtp-gated/ratelimit\nratelimit_generation 20261202000000\nmax_per_ident 4\nmax_load 8.5\n")
        #expect(c.lockOn == [.virus, .spam, .maxhost] && c.lockDuration == -1 && c.maxPerIdent == 4 && c.maxLoad == 8.5)
        #expect(c.abuseControl)
    }

    @Test func fixedModeWithLocksAndNoNatSourcesIsWarnedAbout() throws {
        #expect(ConfigParser.warnings(try parse("lock_on virus\n")).count == 1)
        #expect(ConfigParser.warnings(try parse("lock_on virus\nnat_sources 192.0.2.1\n")).isEmpty)
        #expect(ConfigParser.warnings(try parse("")).isEmpty)
    }
}
