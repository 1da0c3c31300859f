import Foundation
import NIOConcurrencyHelpers
import NIOPosix
import SMTPGateCore
import Testing
@testable import SMTPGateProxy

/// The blocklist check against a real dnsmasq serving test zones, and against a resolver that never answers.
@Suite(.serialized) struct DNSBLCheckTests {
    static let records = [
        "--host-record=5.0.0.127.bl1.example,127.0.0.2", "--host-record=5.0.0.127.bl2.example,127.0.0.3",
        "--host-record=6.0.0.127.bl1.example,127.255.255.254",
        "--host-record=5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.bl1.example,127.0.0.2",
    ]

    static let group = MultiThreadedEventLoopGroup.singleton

    func warnings() -> (lines: NIOLockedValueBox<[String]>, emit: @Sendable (LogRecord) -> Void) {
        let lines = NIOLockedValueBox<[String]>([])
        return (lines, { r in lines.withLockedValue { $0.append(r.description) } })
    }

    @Test func listedUnlistedAndIPv6ClientsAreScored() throws {
        let dns = try DnsmasqTestServer(records: Self.records)
        defer { dns.stop() }
        let r = try Resolver(.init(servers: [dns.address], timeout: 3))
        defer { r.shutdown() }
        let (lines, emit) = warnings()
        let check = DNSBLCheck(sites: try DNSBLSite.parseList("bl1.example*2 bl2.example=127.0.0.[3..4]"), threshold: 3,
                               resolver: r, warn: emit)
        let loop = Self.group.next()
        let both = try check.verdict([127, 0, 0, 5], on: loop).wait()
        #expect(both.listed && both.score == 3 && both.zones == ["bl1.example", "bl2.example"] && both.heaviest == "bl1.example")
        #expect(both.client == "127.0.0.5")
        let queryError = try check.verdict([127, 0, 0, 6], on: loop).wait()
        #expect(queryError.score == 0 && !queryError.listed, "127.255.255.254 is not a listing")
        let v6 = try check.verdict(AddressBytes.parse("2001:db8::5")!, on: loop).wait()
        #expect(v6.score == 2 && !v6.listed && v6.client == "2001:db8::5")
        let mapped = try check.verdict(AddressBytes.parse("::ffff:127.0.0.5")!, on: loop).wait()
        #expect(mapped.score == 3 && mapped.client == "127.0.0.5", "an IPv4 client on an IPv6 listener is asked as IPv4")
        #expect(lines.withLockedValue { $0 }.isEmpty, "no lookup failed")
    }

    @Test func aSilentResolverCountsNothingAndIsReportedOncePerZone() throws {
        let silent = try ScriptedDNS(.silent)
        defer { silent.stop() }
        let r = try Resolver(.init(servers: [silent.address], timeout: 0.4))
        defer { r.shutdown() }
        let (lines, emit) = warnings()
        let check = DNSBLCheck(sites: try DNSBLSite.parseList("bl1.example bl1.example=127.0.0.2*3 bl2.example"), threshold: 1,
                               resolver: r, warn: emit)
        let loop = Self.group.next()
        let t0 = Date()
        let first = try check.verdict([127, 0, 0, 5], on: loop).wait()
        #expect(Date().timeIntervalSince(t0) < 2, "the zones are asked at once, not one after the other")
        #expect(!first.listed && first.failed.map(\.zone) == ["bl1.example", "bl2.example"])
        _ = try check.verdict([127, 0, 0, 7], on: loop).wait()
        #expect(lines.withLockedValue { $0 } == [
            "dnsbl_error zone=bl1.example error=timeout suppressed=0", "dnsbl_error zone=bl2.example error=timeout suppressed=0",
        ], "the second session's failures are counted, not logged")
    }

    @Test func warningsAreRateLimitedPerKeyAndCountWhatWasHeldBack() throws {
        let lines = NIOLockedValueBox<[String]>([])
        let w = RateLimitedWarnings(interval: 0.2, emit: { r in lines.withLockedValue { $0.append(r.description) } })
        for _ in 0..<5 { w.note(key: "a") { DNSBLLog.error(zone: "a", .timeout, suppressed: $0) } }
        w.note(key: "b") { DNSBLLog.error(zone: "b", .busy, suppressed: $0) }
        Thread.sleep(forTimeInterval: 0.25)
        w.note(key: "a") { DNSBLLog.error(zone: "a", .timeout, suppressed: $0) }
        #expect(lines.withLockedValue { $0 } == [
            "dnsbl_error zone=a error=timeout suppressed=0",
            "dnsbl_error zone=b error=\"too many lookups in flight\" suppressed=0",
            "dnsbl_error zone=a error=timeout suppressed=4",
        ])
    }
}
