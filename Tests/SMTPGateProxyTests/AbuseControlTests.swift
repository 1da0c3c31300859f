import Dispatch
import NIOConcurrencyHelpers
import NIOCore
import NIOEmbedded
import Testing
@testable import SMTPGateCore
@testable import SMTPGateProxy
import SMTPGateRuntime
import Logging

/// The shared tables behind every session, with an injected clock.
@Suite("Abuse control: keys, locks, rates, reload")
struct AbuseControlTests {
    final class Clock: @unchecked Sendable {
        var now = 1_000_000.0
    }

    static func config(_ lines: String) throws -> Config {
        try ConfigParser.parse("mode fixed\nfixed_server 192.0.2.25\n" + lines, file: "t.conf")
    }

    static func make(_ lines: String, clock: Clock) throws -> AbuseControl {
        AbuseControl(config: try config(lines), writer: nil, source: "test", now: { clock.now })
    }

    static let client: [UInt8] = [10, 0, 0, 5]

    @Test func aNatSourceHasNoKeyAndIPv6IsGroupedByPrefix() throws {
        let a = try Self.make("lock_on virus\nnat_sources 10.0.0.0/29\nlock_ipv6_prefix 48\n", clock: Clock())
        #expect(a.keys(address: Self.client, ident: nil) == nil, "a router's address is never a client")
        let k = try #require(a.keys(address: [10, 0, 0, 9], ident: "bob"))
        #expect(k.lock.description == "bob@10.0.0.9")
        let v6 = try #require(a.keys(address: AddressBytes.parse("2001:db8:1:2::7")!, ident: nil))
        #expect(v6.lock.description == "2001:db8:1::/48")
        #expect(v6.rate.description == "2001:db8:1:2::/64", "ratelimit_ipv6_prefix keeps its default")
    }

    @Test func aFindingLocksOnlyForItsCauseAndAnAddressLockCoversItsIdents() throws {
        let clock = Clock()
        let a = try Self.make("lock_on virus\nlock_duration 60\n", clock: clock)
        let key = try #require(a.keys(address: Self.client, ident: nil)).lock
        #expect(a.lock(key, for: .spam(score: 9)) == nil, "spam is not in lock_on")
        let lock = try #require(a.lock(key, for: .virus(name: "Eicar")))
        #expect(lock.reason == "virus Eicar" && lock.expires == clock.now + 60)
        #expect(a.lock(key, for: .virus(name: "again")) == nil, "already locked: no second lock, no second script")
        let withIdent = try #require(a.keys(address: Self.client, ident: "bob")).lock
        #expect(a.activeLock(withIdent) == lock)
        clock.now += 61
        #expect(a.activeLock(key) == nil, "expired")
    }

    @Test func aReloadKeepsLocksAndCounters() throws {
        let clock = Clock()
        let a = try Self.make("lock_on virus\nratelimit_messages 2/60\n", clock: clock)
        let keys = try #require(a.keys(address: Self.client, ident: nil))
        _ = a.lock(keys.lock, for: .virus(name: "x"))
        a.record(keys.rate, .messages)
        a.record(keys.rate, .messages)
        #expect(a.exceeded(keys.rate, [.messages])?.count == 2)
        a.reconfigure(try Self.config("lock_on virus,spam\nratelimit_messages 2/60 100/1d\n"))
        #expect(a.activeLock(keys.lock) != nil)
        #expect(a.exceeded(keys.rate, [.messages])?.window == RateWindow(limit: 2, seconds: 60), "counts carried over")
    }

    /// lock_ipv6_prefix changed (reload, or a restart reading the store): no lock is lost. A longer-prefix
    /// lock widens to the new prefix; a shorter one keeps covering the keys inside it.
    @Test func aChangedLockIPv6PrefixLosesNoLock() throws {
        let clock = Clock()
        let a = try Self.make("lock_on virus\nlock_ipv6_prefix 48\n", clock: clock)
        let client = AddressBytes.parse("2001:db8:1:2::7")!
        _ = a.lock(try #require(a.keys(address: client, ident: nil)).lock, for: .virus(name: "x"))
        a.reconfigure(try Self.config("lock_on virus\nlock_ipv6_prefix 64\n"))
        #expect(a.activeLock(try #require(a.keys(address: client, ident: nil)).lock)?.key.description == "2001:db8:1::/48")
        #expect(a.activeLock(try #require(a.keys(address: AddressBytes.parse("2001:db8:1:99::1")!, ident: "bob")).lock) != nil,
                "a /48 lock covers every /64 in it, and their idents")
        let b = try Self.make("lock_on virus\nlock_ipv6_prefix 32\n", clock: clock)
        b.restore(locks: [StoredLock(key: "2001:db8:1:2::/64", cause: "virus", reason: "y", created: clock.now, expires: nil, source: "p")],
                  counters: [])
        #expect(b.allLocks().map(\.key.description) == ["2001:db8::/32"], "widened to what a customer now is")
        #expect(b.removeLock(try ClientKey(stored: "2001:db8::/32", ipv6Prefix: 32)) != nil)
    }

    @Test func locksFromOtherWritersArriveAndLeave() throws {
        let clock = Clock()
        let a = try Self.make("lock_on virus\n", clock: clock)
        let key = try #require(a.keys(address: Self.client, ident: nil)).lock
        a.absorb([.put(StoredLock(key: "10.0.0.5", cause: "admin", reason: "other proxy", created: clock.now,
                                  expires: clock.now + 100, source: "proxy-b"))])
        #expect(a.activeLock(key)?.reason == "other proxy")
        a.absorb([.put(StoredLock(key: "garbage", cause: "admin", reason: "x", created: 0, expires: nil, source: "b")),
                  .removed(key: "10.0.0.5", source: "proxy-b")])
        #expect(a.activeLock(key) == nil)
    }

    /// A pool: the other proxies' rows count towards this proxy's limits (summed kinds only), with
    /// overrides applied to the total, and this proxy's own rows are not counted twice.
    @Test func otherProxiesCountsArePartOfEveryDecision() throws {
        let clock = Clock()
        clock.now = 3600.0 * 500_000 + 10
        let a = try Self.make("ratelimit_messages 5/1h\nratelimit_destinations 1/1h\n", clock: clock)
        let key = try #require(a.keys(address: Self.client, ident: nil)).rate
        func row(_ kind: String, _ current: Double, source: String) -> StoredCounter {
            StoredCounter(key: "10.0.0.5", kind: kind, seconds: 3600, bucketStart: 3600.0 * 500_000, current: current, previous: 0,
                          source: source)
        }
        a.record(key, .messages)
        a.absorb(counters: [row("messages", 3, source: "proxy-b"), row("messages", 50, source: "test"),
                            row("destinations", 9, source: "proxy-b"), row("recipients", 50, source: "proxy-b")])
        #expect(a.exceeded(key, [.messages]) == nil, "1 here + 3 there, this proxy's own row ignored")
        a.absorb(counters: [row("messages", 4, source: "proxy-b")])
        #expect(a.exceeded(key, [.messages]) == RateExceeded(kind: .messages, window: RateWindow(limit: 5, seconds: 3600), count: 5))
        #expect(a.admitConnection(key, to: "mx.example") == nil, "destinations are counted per proxy")
        #expect(a.admitConnection(key, to: "mx2.example")?.kind == .destinations)
        #expect(a.admitConnection(key, to: "mx.example") == nil, "a destination in use is never refused")
        #expect(a.peerClients == 1)
        #expect(a.counters(key).map { "\($0.kind.rawValue) \($0.count)" } == ["messages 5.0", "destinations 1.0"])
        // A client only the other proxy has seen is limited here too, and shown.
        let other = try #require(a.keys(address: [10, 0, 0, 6], ident: nil)).rate
        a.absorb(counters: [StoredCounter(key: "10.0.0.6", kind: "messages", seconds: 3600, bucketStart: 3600.0 * 500_000, current: 5,
                                          previous: 0, source: "proxy-c")])
        #expect(a.exceeded(other, [.messages])?.count == 5)
        #expect(a.counters(other).first?.count == 5)
        // Once its window has passed the copy no longer counts and is swept.
        clock.now += 7200
        #expect(a.exceeded(other, [.messages]) == nil)
        a.tidy()
        #expect(a.peerClients == 0)
    }

    static func file(_ text: String) throws -> ConfigFile {
        try ConfigParser.parseFile(bytes: Array(("mode fixed\nfixed_server 192.0.2.25\n" + text).utf8), file: "t.conf")
    }

    /// Listeners keeping the global limits count together; one with its own `ratelimit_*` counts its own
    /// sessions against its own limits; `lock_on` and `lock_duration` are each listener's; locks are shared.
    @Test func aListenerWithItsOwnLimitsCountsApart() throws {
        let clock = Clock()
        clock.now = 3600.0 * 500_000 + 10
        let f = try Self.file("""
            ratelimit_messages 2/1h
            lock_on virus
            [listener in]
            port 2525
            [listener also]
            port 2526
            [listener out]
            port 2587
            ratelimit_messages 5/1h
            lock_on spam
            lock_duration 60

            """)
        let a = AbuseControl(file: f, writer: nil, source: "test", now: { clock.now })
        let keys = try #require(a.keys(address: Self.client, ident: nil))
        a.record(keys.rate, .messages, listener: "in")
        a.record(keys.rate, .messages, listener: "also")
        #expect(a.exceeded(keys.rate, [.messages], listener: "in")?.window == RateWindow(limit: 2, seconds: 3600),
                "in and also share the global count")
        #expect(a.exceeded(keys.rate, [.messages], listener: "out") == nil, "out has its own count, still empty")
        for _ in 0..<5 { a.record(keys.rate, .messages, listener: "out") }
        #expect(a.exceeded(keys.rate, [.messages], listener: "out")?.window == RateWindow(limit: 5, seconds: 3600))
        #expect(a.counters(keys.rate).map { "\(AbuseControl.storedKind($0.set, $0.kind)) \($0.count)" }
                == ["messages 2.0", "out/messages 5.0"])
        #expect(a.lock(keys.lock, for: .virus(name: "x"), listener: "out") == nil, "out locks for spam only")
        let lock = try #require(a.lock(keys.lock, for: .spam(score: 9), listener: "out"))
        #expect(lock.expires == clock.now + 60, "out's own lock_duration")
        #expect(a.activeLock(keys.lock) == lock, "a lock holds on every listener")
        #expect(a.lockSettings(listener: "in").causes == [.virus] && a.lockSettings(listener: "gone").causes == [.virus])
        // A reload that gives in its own limits: in starts a fresh count, also keeps the global one.
        a.reconfigure(try Self.file("ratelimit_messages 2/1h\n[listener in]\nport 2525\nratelimit_messages 3/1h\n"
                                    + "[listener also]\nport 2526\n[listener out]\nport 2587\nratelimit_messages 5/1h\n"))
        #expect(a.exceeded(keys.rate, [.messages], listener: "in") == nil)
        #expect(a.exceeded(keys.rate, [.messages], listener: "also") != nil)
        #expect(a.exceeded(keys.rate, [.messages], listener: "out") != nil, "out's count is carried over")
    }

    /// A listener's own counters go to the store as `LISTENER/kind`, come back at start, and another
    /// proxy's rows for them count on the same listener only.
    @Test func aListenersCountersRoundTripThroughTheStoreUnderItsName() throws {
        let clock = Clock()
        clock.now = 3600.0 * 500_000 + 10
        let f = try Self.file("[listener in]\nport 2525\n[listener out]\nport 2587\nratelimit_messages 5/1h\n")
        let a = AbuseControl(file: f, writer: nil, source: "test", now: { clock.now })
        let key = try #require(a.keys(address: Self.client, ident: nil)).rate
        func row(_ kind: String, _ current: Double, _ source: String) -> StoredCounter {
            StoredCounter(key: "10.0.0.5", kind: kind, seconds: 3600, bucketStart: 3600.0 * 500_000, current: current,
                          previous: 0, source: source)
        }
        a.restore(locks: [], counters: [row("out/messages", 3, "test"), row("out/messages", 1, "proxy-b"),
                                        row("messages", 40, "proxy-b"), row("gone/messages", 40, "proxy-b"), row("/messages", 9, "b"),
                                        row("out/bogus", 9, "b")])
        #expect(a.counters(key).map { "\(AbuseControl.storedKind($0.set, $0.kind)) \($0.count)" } == ["out/messages 4.0"],
                "own 3 restored, proxy-b's 1 absorbed; rows for limits this file lacks are skipped")
        a.record(key, .messages, listener: "out")
        #expect(a.exceeded(key, [.messages], listener: "out")?.count == 5)
        #expect(a.exceeded(key, [.messages], listener: "in") == nil, "in has no limit")
        #expect(AbuseControl.parseStoredKind("out/messages").map { "\($0.set) \($0.kind)" } == "out messages")
        #expect(AbuseControl.parseStoredKind("messages").map { "\($0.set) \($0.kind)" } == " messages")
        #expect(AbuseControl.parseStoredKind("/messages") == nil && AbuseControl.parseStoredKind("out/") == nil)
    }

    /// Connections accepted at once on several threads: exactly the limit passes, never more.
    @Test func connectionsAdmittedConcurrentlyNeverPassTheLimit() throws {
        let clock = Clock()
        clock.now = 3600.0 * 500_000 + 10
        let a = try Self.make("ratelimit_connections 10/1h\n", clock: clock)
        let key = try #require(a.keys(address: Self.client, ident: nil)).rate
        let passed = NIOLockedValueBox(0)
        DispatchQueue.concurrentPerform(iterations: 200) { i in
            if a.admitConnection(key, to: "mx\(i % 3).example") == nil { passed.withLockedValue { $0 += 1 } }
        }
        #expect(passed.withLockedValue { $0 } == 10)
        #expect(a.counters(key).first?.count == 10, "refused connections are not counted")
    }

    @Test func anOverrideLimitsThePoolsTotal() throws {
        let clock = Clock()
        clock.now = 3600.0 * 500_000 + 10
        var config = try Self.config("ratelimit_messages 5/1h\n")
        config.rateOverrides = try RateOverrides.parse("10.0.0.0/24 messages 20/1h\n", file: "o.txt", limits: config.rateLimits)
        let a = AbuseControl(config: config, writer: nil, source: "test", now: { clock.now })
        let key = try #require(a.keys(address: Self.client, ident: nil)).rate
        a.absorb(counters: [StoredCounter(key: "10.0.0.5", kind: "messages", seconds: 3600, bucketStart: 3600.0 * 500_000,
                                          current: 19, previous: 0, source: "proxy-b")])
        #expect(a.exceeded(key, [.messages]) == nil)
        a.record(key, .messages)
        #expect(a.exceeded(key, [.messages])?.window == RateWindow(limit: 20, seconds: 3600))
    }

    @Test func theControlHandlerAnswersOneBoundedLine() throws {
        let clock = Clock()
        let a = try Self.make("lock_on virus\n", clock: clock)
        let service = ControlService(abuse: a, events: EventLog { _ in },
                                     ipv6Prefix: 64)
        func exchange(_ request: String) throws -> String {
            let ch = EmbeddedChannel(handler: ControlHandler(service: service))
            ch.pipeline.fireChannelActive()
            try ch.writeInbound(ch.allocator.buffer(string: request))
            var out = ""
            while var b = try ch.readOutbound(as: ByteBuffer.self) { out += b.readString(length: b.readableBytes) ?? "" }
            _ = try? ch.finish()
            return out
        }
        #expect(try exchange("locks\tadd\t10.0.0.5\t60\tby hand\n").hasSuffix("\tby hand\nok\n"))
        #expect(try exchange("locks\tlist\n") == "lock\t10.0.0.5\tadmin\t1000000\t1000060\tby hand\nok\n")
        #expect(try exchange("locks\tremove\t10.0.0.9\n") == "error\t10.0.0.9 is not locked\n")
        #expect(try exchange("nonsense\n").hasPrefix("error\tunknown request"))
        #expect(try exchange(String(repeating: "A", count: 5000)).hasPrefix("error\trequest longer than"))
    }

    @Test(arguments: [("0.42 0.30 0.25 1/123 4567\n", 0.42), ("12.00 1 1 1/1 1", 12.0)])
    func loadAverageIsTheFirstField(_ text: String, _ value: Double) {
        #expect(LoadAverage.parse(ArraySlice(text.utf8)) == value)
    }

    @Test(arguments: ["", "nan 1 1", "-1 2 3", "inf", "1e400 0 0", String(repeating: "9", count: 40)])
    func unreadableLoadIsNil(_ text: String) {
        #expect(LoadAverage.parse(ArraySlice(text.utf8)) == nil)
    }
}
