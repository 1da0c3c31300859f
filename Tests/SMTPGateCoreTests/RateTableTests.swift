import Testing
@testable import SMTPGateCore

@Suite struct RateTableTests {
    func key(_ s: String) -> ClientKey { try! ClientKey(parsing: s, ipv6Prefix: 64) }
    func spec(_ s: String) -> RateLimitSpec { try! RateLimitSpec.parse(s, defaultSeconds: 3600) }
    func ipv4(_ i: Int) -> ClientKey {
        ClientKey(address: [10, UInt8(i >> 16 & 0xff), UInt8(i >> 8 & 0xff), UInt8(i & 0xff)], ipv6Prefix: 64)
    }

    @Test func checkBeforeRecordLetsAClientThroughAgainAsTheWindowSlides() {
        var table = RateTable(limits: [.messages: spec("3/60")], capacity: 10)
        let bob = key("10.0.0.5")
        var sent = 0
        for t in 0..<10 {
            if table.exceeded(bob, .messages, now: 600 + Double(t)) == nil {
                table.record(bob, .messages, now: 600 + Double(t))
                sent += 1
            }
        }
        #expect(sent == 3)
        #expect(table.exceeded(bob, .messages, now: 659) == RateExceeded(kind: .messages, window: RateWindow(limit: 3, seconds: 60), count: 3))
        // At 700 the previous bucket (3) weighs 1 - 40/60, so the estimate is 1: allowed again.
        #expect(table.exceeded(bob, .messages, now: 700) == nil)
        #expect(table.exceeded(key("10.0.0.6"), .messages, now: 659) == nil)
    }

    @Test func theShorterWindowTripsFirstTheLongerOneLater() {
        var table = RateTable(limits: [.recipients: spec("150/1d 10/1m")], capacity: 10)
        let bob = key("10.0.0.5")
        let day = 86400.0 * 20000
        table.record(bob, .recipients, amount: 10, now: day)
        #expect(table.exceeded(bob, .recipients, now: day)?.window == RateWindow(limit: 10, seconds: 60))
        var t = day
        for _ in 0..<14 {
            t += 120  // past the minute window, still the same day
            #expect(table.exceeded(bob, .recipients, now: t) == nil)
            table.record(bob, .recipients, amount: 10, now: t)
        }
        t += 120
        #expect(table.exceeded(bob, .recipients, now: t) == RateExceeded(kind: .recipients, window: RateWindow(limit: 150, seconds: 86400), count: 150))
    }

    @Test func unconfiguredKindsCostNothing() {
        var table = RateTable(limits: [.messages: spec("3/60"), .bytes: spec("0")], capacity: 10)
        table.record(key("10.0.0.5"), .connections, now: 0)
        table.record(key("10.0.0.5"), .bytes, amount: 1e9, now: 0)
        table.recordDestination(key("10.0.0.5"), hash: 1, now: 0)
        #expect(table.count == 0)
        #expect(table.exceeded(key("10.0.0.5"), .connections, now: 0) == nil)
        #expect(table.limits.keys.sorted { $0.rawValue < $1.rawValue } == [.messages])
        // A summed record for destinations is not how destinations are counted.
        var d = RateTable(limits: [.destinations: spec("2/60")], capacity: 10)
        d.record(key("10.0.0.5"), .destinations, now: 0)
        #expect(d.count == 0)
    }

    @Test func destinationsCountDistinctHashes() {
        var table = RateTable(limits: [.destinations: spec("2/60")], capacity: 10)
        let bob = key("10.0.0.5")
        table.recordDestination(bob, hash: 0xabc, now: 600)
        table.recordDestination(bob, hash: 0xabc, now: 601)
        #expect(table.exceeded(bob, .destinations, now: 601) == nil)
        table.recordDestination(bob, hash: 0xdef, now: 602)
        #expect(table.exceeded(bob, .destinations, now: 602) == RateExceeded(kind: .destinations, window: RateWindow(limit: 2, seconds: 60), count: 2))
        for h in 0..<100 as Range<UInt64> { table.recordDestination(bob, hash: h, now: 603) }
        #expect(table.counters(bob, now: 603).map(\.count) == [3])  // capped at limit + 1
    }

    @Test func countersForShow() {
        var table = RateTable(limits: [.connections: spec("5/1m 50/1h"), .destinations: spec("9/1h")], capacity: 10)
        let bob = key("bob@10.0.0.5")
        table.record(bob, .connections, now: 3600)
        table.recordDestination(bob, hash: 7, now: 3600)
        let rows = table.counters(bob, now: 3601)
        #expect(rows.map(\.kind) == [.connections, .connections, .destinations])
        #expect(rows.map(\.window.seconds) == [60, 3600, 3600])
        #expect(rows.map(\.count) == [1, 1, 1])
        #expect(table.counters(key("10.0.0.5"), now: 3601).isEmpty)
    }

    @Test func sweepDropsIdleClientsWithBoundedWork() {
        var table = RateTable(limits: [.messages: spec("3/60")], capacity: 100)
        for i in 0..<10 { table.record(ipv4(i), .messages, now: 600) }
        table.record(ipv4(99), .messages, now: 700)
        #expect(table.sweep(now: 719, limit: 100) == 0)  // the 600 bucket still weighs in until 720
        #expect(table.sweep(now: 720, limit: 4) == 4)
        #expect(table.count == 7)
        #expect(table.sweep(now: 720, limit: 100) == 6)
        #expect(table.count == 1)
        #expect(table.counters(ipv4(99), now: 720).map(\.count) == [1])
        #expect(table.counters(ipv4(0), now: 720).isEmpty)
        #expect(table.sweep(now: 720, limit: -5) == 0)
    }

    @Test func aFullTableEvictsAnIdleClientFirst() {
        var table = RateTable(limits: [.messages: spec("3/60")], capacity: 3)
        table.record(ipv4(1), .messages, now: 0)      // idle by 120
        table.record(ipv4(2), .messages, now: 100)
        table.record(ipv4(3), .messages, now: 100)
        table.record(ipv4(4), .messages, now: 120)
        #expect(table.count == 3)
        #expect(table.counters(ipv4(1), now: 120).isEmpty)
        #expect(!table.counters(ipv4(2), now: 120).isEmpty)
    }

    @Test func aFullTableWithoutIdleClientsEvictsTheOldest() {
        var table = RateTable(limits: [.messages: spec("3/60")], capacity: 3)
        table.record(ipv4(1), .messages, now: 100)
        table.record(ipv4(2), .messages, now: 100)
        table.record(ipv4(3), .messages, now: 100)
        table.record(ipv4(1), .messages, now: 101)  // recording again does not make it newer
        table.record(ipv4(4), .messages, now: 101)
        #expect(table.count == 3)
        #expect(table.counters(ipv4(1), now: 101).isEmpty)
        table.record(ipv4(5), .messages, now: 101)
        #expect(table.counters(ipv4(2), now: 101).isEmpty)
        #expect(table.counters(ipv4(4), now: 101).map(\.count) == [1])
        // A slot taken over starts from zero.
        #expect(table.counters(ipv4(5), now: 101).map(\.count) == [1])
    }

    @Test func recordsAndRestoreRoundTrip() {
        let limits: [RateKind: RateLimitSpec] = [.messages: spec("3/60 100/1d"), .destinations: spec("5/1h")]
        var table = RateTable(limits: limits, capacity: 10)
        table.record(key("10.0.0.5"), .messages, amount: 2, now: 86400)
        table.record(key("10.0.0.5"), .messages, now: 86460)
        table.record(key("bob@2001:db8::/64"), .messages, now: 86470)
        table.recordDestination(key("10.0.0.5"), hash: 1, now: 86400)
        table.recordDestination(key("10.0.0.5"), hash: 2, now: 86400)
        let records = table.records(now: 86470)
        #expect(records.count == 5)
        #expect(records.contains(RateRecord(key: "10.0.0.5", kind: .messages, seconds: 60, bucketStart: 86460, current: 1, previous: 2)))
        #expect(records.contains(RateRecord(key: "10.0.0.5", kind: .destinations, seconds: 3600, bucketStart: 86400, current: 2, previous: 0)))
        var copy = RateTable(limits: limits, capacity: 10)
        copy.restore(records, now: 86470)
        #expect(copy.count == 2)
        for k in [key("10.0.0.5"), key("bob@2001:db8::/64")] {
            #expect(copy.counters(k, now: 86500).map(\.count) == table.counters(k, now: 86500).map(\.count))
        }
        #expect(copy.records(now: 86470).count == 5)
        #expect(table.records(now: 86400 * 3).isEmpty)
    }

    @Test func restoreIgnoresWhatItCannotUse() {
        var table = RateTable(limits: [.messages: spec("3/60")], capacity: 2)
        table.restore([
            RateRecord(key: "10.0.0.1", kind: .bytes, seconds: 60, bucketStart: 600, current: 1, previous: 0),
            RateRecord(key: "10.0.0.2", kind: .messages, seconds: 61, bucketStart: 610, current: 1, previous: 0),
            RateRecord(key: "10.0.0.3/32", kind: .messages, seconds: 60, bucketStart: 600, current: 1, previous: 0),
            RateRecord(key: "2001:db8::/48", kind: .messages, seconds: 60, bucketStart: 600, current: 1, previous: 0),
            RateRecord(key: "10.0.0.4\0", kind: .messages, seconds: 60, bucketStart: 600, current: 1, previous: 0),
            RateRecord(key: "10.0.0.5", kind: .messages, seconds: 60, bucketStart: 300, current: 9, previous: 9),
            RateRecord(key: "10.0.0.6", kind: .messages, seconds: 60, bucketStart: .nan, current: 1, previous: 0),
            RateRecord(key: "10.0.0.7", kind: .messages, seconds: 60, bucketStart: 1e12, current: 1, previous: 0),
            RateRecord(key: "10.0.0.8", kind: .messages, seconds: 60, bucketStart: 600, current: -4, previous: .infinity),
        ], now: 610)
        #expect(table.count == 0)
        let many = (0..<50).map { RateRecord(key: "10.0.1.\($0)", kind: .messages, seconds: 60, bucketStart: 600, current: 1, previous: 0) }
        table.restore(many, now: 610)
        #expect(table.count == 2)
        #expect(table.counters(key("10.0.1.1"), now: 610).map(\.count) == [1])
    }

    @Test func kindsIndexTheirOwnWindows() {
        #expect(RateKind.allCases.enumerated().allSatisfy { $0.offset == $0.element.ordinal })
        #expect(RateKind.allCases.map(\.optionName) == [
            "ratelimit_connections", "ratelimit_messages", "ratelimit_recipients", "ratelimit_bytes",
            "ratelimit_mailfrom_rejects", "ratelimit_rcptto_rejects", "ratelimit_auth_rejects", "ratelimit_destinations",
        ])
        var table = RateTable(limits: [.authRejects: spec("1/60"), .bytes: spec("1000/60")], capacity: 10)
        table.record(key("10.0.0.5"), .bytes, amount: 999, now: 0)
        #expect(table.exceeded(key("10.0.0.5"), .bytes, now: 0) == nil)
        #expect(table.exceeded(key("10.0.0.5"), .authRejects, now: 0) == nil)
        table.record(key("10.0.0.5"), .authRejects, now: 0)
        #expect(table.exceeded(key("10.0.0.5"), .authRejects, now: 0)?.kind == .authRejects)
        #expect(table.exceeded(key("10.0.0.5"), .bytes, now: 0) == nil)
    }

    @Test func handBuiltHugeLimitsDoNotTrap() {
        let huge = RateLimitSpec(windows: [RateWindow(limit: Int.max, seconds: 60)])
        var table = RateTable(limits: [.destinations: huge, .bytes: huge], capacity: 10)
        table.recordDestination(key("10.0.0.5"), hash: 1, now: 0)
        table.record(key("10.0.0.5"), .bytes, amount: 1e300, now: 0)
        #expect(table.exceeded(key("10.0.0.5"), .destinations, now: 0) == nil)
        #expect(table.exceeded(key("10.0.0.5"), .bytes, now: 0)?.count == Int.max)
    }

    @Test func bytesPerClientIsMeasured() {
        #expect(MemoryLayout<ClientKey>.stride == 40)
        #expect(MemoryLayout<ClientKey?>.stride == 40)
        let four = RateTable(limits: [.connections: spec("20/1h 200/1d"), .messages: spec("50/1h 500/1d")], capacity: 1)
        #expect(four.bytesPerClient == 40 + 9 + 4 * 24 + (44 * 8 + 2) / 3)
        #expect(four.bytesPerClient == 263)
        let none = RateTable(limits: [:], capacity: 1)
        #expect(none.bytesPerClient == 167)
        #expect(MemoryLayout<DistinctCounter>.stride == 56)
    }

    @Test func manyClientsStayFindable() {
        var table = RateTable(limits: [.connections: spec("2/1h")], capacity: 50_000)
        for i in 0..<60_000 { table.record(ipv4(i), .connections, now: 7200) }
        #expect(table.count == 50_000)
        #expect(table.counters(ipv4(9_999), now: 7200).isEmpty)
        #expect(table.counters(ipv4(10_000), now: 7200).map(\.count) == [1])
        table.record(ipv4(59_999), .connections, now: 7200)
        #expect(table.exceeded(ipv4(59_999), .connections, now: 7200)?.count == 2)
    }

    @Test func changedClientsAreTakenOnceEachAndBounded() {
        var table = RateTable(limits: [.messages: spec("3/60 10/1h"), .destinations: spec("5/1h")], capacity: 10)
        let now = 36_000.0
        table.restore([RateRecord(key: "10.0.0.9", kind: .messages, seconds: 60, bucketStart: 36_000, current: 1, previous: 0)], now: now)
        #expect(table.changedCount == 0, "restored counters are already in the store")
        table.record(key("10.0.0.5"), .messages, now: now)
        table.record(key("10.0.0.5"), .messages, now: now + 1)
        table.recordDestination(key("10.0.0.6"), hash: 42, now: now)
        table.record(key("10.0.0.7"), .messages, now: now)
        #expect(table.changedCount == 3, "a client counted twice is listed once")
        let first = table.takeChanged(limit: 2, now: now + 1)
        #expect(first.map(\.key) == ["10.0.0.5", "10.0.0.5", "10.0.0.6"])
        #expect(first.first { $0.seconds == 60 }?.current == 2)
        #expect(table.takeChanged(limit: 10, now: now + 1).map(\.key) == ["10.0.0.7", "10.0.0.7"])
        #expect(table.takeChanged(limit: 10, now: now + 1).isEmpty)
    }

    @Test func aClientEvictedAfterItsChangeIsNotReportedUnderItsSlotsNewOwner() {
        var table = RateTable(limits: [.messages: spec("3/60")], capacity: 1)
        table.record(key("10.0.0.5"), .messages, now: 600)
        table.record(key("10.0.0.6"), .messages, amount: 2, now: 600)
        let taken = table.takeChanged(limit: 10, now: 600)
        #expect(taken == [RateRecord(key: "10.0.0.6", kind: .messages, seconds: 60, bucketStart: 600, current: 2, previous: 0)])
        #expect(table.estimate(key("10.0.0.6"), .messages, seconds: 60, now: 600) == 2)
        #expect(table.estimate(key("10.0.0.6"), .messages, seconds: 3600, now: 600) == 0, "no such window")
        #expect(table.estimate(key("10.0.0.5"), .messages, seconds: 60, now: 600) == 0, "evicted")
    }
}
