import Testing
@testable import SMTPGateCore

@Suite struct PeerCountersTests {
    static let hour = 3600
    static let t = 3600.0 * 100_000 + 1800  // half way through an hour bucket

    func row(_ key: String, _ kind: RateKind = .messages, seconds: Int = hour, start: Double = 3600.0 * 100_000,
             current: Double, previous: Double = 0) -> RateRecord {
        RateRecord(key: key, kind: kind, seconds: seconds, bucketStart: start, current: current, previous: previous)
    }

    let bob = try! ClientKey(parsing: "10.0.0.5", ipv6Prefix: 64)

    @Test func eachProxysRowReplacesItsOwnCopyAndTheCopiesAreSummed() {
        var peers = PeerCounters(capacity: 10)
        peers.absorb(row("10.0.0.5", current: 2), source: "b", ipv6Prefix: 64, now: Self.t)
        peers.absorb(row("10.0.0.5", current: 3), source: "c", ipv6Prefix: 64, now: Self.t)
        peers.absorb(row("10.0.0.5", current: 4), source: "b", ipv6Prefix: 64, now: Self.t)
        peers.absorb(row("10.0.0.5", current: 4), source: "b", ipv6Prefix: 64, now: Self.t)
        #expect(peers.estimate(bob, .messages, seconds: Self.hour, now: Self.t) == 7, "b's newest row (4) plus c's (3)")
        #expect(peers.estimate(bob, .recipients, seconds: Self.hour, now: Self.t) == 0)
        #expect(peers.estimate(bob, .messages, seconds: 60, now: Self.t) == 0)
        // The copies age like the counters they copy: the previous bucket weighs down as the next passes.
        let later = Self.t + 1800 + 900
        #expect(peers.estimate(bob, .messages, seconds: Self.hour, now: later) == 7 * 0.75)
        #expect(peers.estimate(bob, .messages, seconds: Self.hour, now: Self.t + 7200) == 0)
        #expect(peers.sweep(now: Self.t + 7200, limit: 10) == 1)
        #expect(peers.isEmpty)
    }

    @Test func hostileRowsAreIgnored() {
        var peers = PeerCounters(capacity: 10)
        peers.absorb(row("not an address", current: 5), source: "b", ipv6Prefix: 64, now: Self.t)
        peers.absorb(row("10.0.0.5", .destinations, current: 5), source: "b", ipv6Prefix: 64, now: Self.t)
        peers.absorb(row("10.0.0.5", start: .infinity, current: 5), source: "b", ipv6Prefix: 64, now: Self.t)
        peers.absorb(row("10.0.0.5", start: Self.t + 86_400, current: 5), source: "b", ipv6Prefix: 64, now: Self.t)
        peers.absorb(row("10.0.0.5", start: 0, current: 5), source: "b", ipv6Prefix: 64, now: Self.t)
        peers.absorb(row("10.0.0.5", current: -.infinity), source: "b", ipv6Prefix: 64, now: Self.t)
        #expect(peers.isEmpty, "nothing that counts: \(peers.count)")
        peers.absorb(row("10.0.0.5", current: .nan), source: "b", ipv6Prefix: 64, now: Self.t)
        #expect(peers.estimate(bob, .messages, seconds: Self.hour, now: Self.t) == 0)
    }

    @Test func theTableIsBoundedInClientsSourcesAndCopies() {
        var peers = PeerCounters(capacity: 3)
        for i in 0..<10 { peers.absorb(row("10.0.1.\(i)", current: 1), source: "b", ipv6Prefix: 64, now: Self.t) }
        #expect(peers.count == 3, "rows for clients past the capacity are ignored while all count")
        // Once the first three are idle, new clients take their room.
        let later = Self.t + 3 * 3600
        peers.absorb(row("10.0.2.1", start: 3600.0 * 100_003, current: 1), source: "b", ipv6Prefix: 64, now: later)
        #expect(peers.count == 1)
        var many = PeerCounters(capacity: 10)
        for s in 0..<(PeerCounters.maxSources + 10) {
            many.absorb(row("10.0.0.\(s % 2)", current: 1), source: "proxy-\(s)", ipv6Prefix: 64, now: Self.t)
        }
        let a = many.estimate(try! ClientKey(parsing: "10.0.0.0", ipv6Prefix: 64), .messages, seconds: Self.hour, now: Self.t)
        #expect(a == Double(PeerCounters.maxCopies), "one client keeps at most maxCopies windows")
    }
}
