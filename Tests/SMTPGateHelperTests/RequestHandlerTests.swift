import NIOConcurrencyHelpers
import Testing
import SMTPGateCore
@testable import SMTPGateHelper

@Suite struct RequestHandlerTests {
    let proxy = AddressBytes.parse("10.77.2.10")!
    let proxy6 = AddressBytes.parse("fd77:2::10")!
    let stranger = AddressBytes.parse("10.77.9.9")!

    func handler(_ policy: HelperPolicy = Fixture.policy(), now: UInt64 = Fixture.now) -> RequestHandler {
        RequestHandler(policy: policy, clock: { now })
    }

    func dropReason(_ h: RequestHandler, _ bytes: [UInt8], from source: [UInt8]) -> String? {
        h.answer(bytes, from: source, using: Fixture.lookup).drop
    }

    @Test func legacyFound() throws {
        let query = Fixture.legacyQuery()
        let (reply, drop) = handler().answer(query, from: proxy, using: Fixture.lookup)
        #expect(drop == nil)
        let bytes = try #require(reply)
        #expect(bytes.count == query.count)
        let r = try LegacyPacket.decode(bytes, expecting: .reply)
        #expect(r.kind == .found)
        #expect(r.cookie == 0xC00C1E)
        #expect(r.secret == 7)
        #expect(r.source == Fixture.client4)
        #expect(r.destination == Fixture.mta4)
    }

    @Test func legacyNotFoundEchoesTheQuery() throws {
        let query = Fixture.legacyQuery(Fixture.ep("10.77.2.1", 1), Fixture.proxy4)
        let r = try LegacyPacket.decode(try #require(handler().answer(query, from: proxy, using: Fixture.lookup).reply),
                                        expecting: .reply)
        #expect(r.kind == .notFound)
        #expect(r.source == Fixture.ep("10.77.2.1", 1))
        #expect(r.destination == Fixture.proxy4)
    }

    @Test func lookupErrorsAnswerNotFound() throws {
        let reply = handler().answer(Fixture.legacyQuery(), from: proxy, using: FakeLookup(failing: true)).reply
        #expect(try LegacyPacket.decode(try #require(reply), expecting: .reply).kind == .notFound)
    }

    @Test func legacySecrets() {
        #expect(dropReason(handler(), Fixture.legacyQuery(secret: 8), from: proxy) == "bad_secret")
        #expect(dropReason(handler(), Fixture.legacyQuery(secret: 0), from: proxy) == "bad_secret")
        let open = handler(Fixture.policy(legacy: 0))
        #expect(dropReason(open, Fixture.legacyQuery(secret: 0), from: proxy) == nil)
        #expect(dropReason(open, Fixture.legacyQuery(secret: 7), from: proxy) == "bad_secret")
        let off = handler(Fixture.policy(legacy: nil))
        #expect(dropReason(off, Fixture.legacyQuery(), from: proxy) == "legacy_disabled")
    }

    @Test func disallowedSourcesGetNothing() {
        #expect(dropReason(handler(), Fixture.legacyQuery(), from: stranger) == "disallowed")
        #expect(dropReason(handler(), Fixture.v2Query(), from: stranger) == "disallowed")
        #expect(dropReason(handler(), Fixture.v2Query(), from: AddressBytes.parse("fd77:3::10")!) == "disallowed")
        // IPv4 peers on a dual-stack socket arrive IPv4-mapped.
        #expect(dropReason(handler(), Fixture.legacyQuery(), from: AddressBytes.parse("::ffff:10.77.2.10")!) == nil)
        #expect(dropReason(handler(), Fixture.legacyQuery(), from: AddressBytes.parse("::ffff:10.77.9.9")!) == "disallowed")
    }

    @Test func v2FoundIPv4AndIPv6() throws {
        for (s, d, client, mta, source) in [
            (Fixture.router4, Fixture.proxy4, Fixture.client4, Fixture.mta4, proxy),
            (Fixture.router6, Fixture.proxy6, Fixture.client6, Fixture.mta6, proxy6),
        ] {
            let query = Fixture.v2Query(nonce: 99, s, d)
            let (reply, drop) = handler().answer(query, from: source, using: Fixture.lookup)
            #expect(drop == nil)
            let bytes = try #require(reply)
            #expect(bytes.count == query.count)
            let r = try V2Packet.decode(bytes, key: Fixture.key, now: Fixture.now, expecting: .reply)
            #expect(r.kind == .found)
            #expect(r.nonce == 99)
            #expect(r.source == client)
            #expect(r.destination == mta)
        }
    }

    @Test func v2NotFound() throws {
        let query = Fixture.v2Query(Fixture.ep("fd77:2::1", 7), Fixture.proxy6)
        let r = try V2Packet.decode(try #require(handler().answer(query, from: proxy6, using: Fixture.lookup).reply),
                                    key: Fixture.key, now: Fixture.now, expecting: .reply)
        #expect(r.kind == .notFound)
        #expect(r.source == Fixture.ep("fd77:2::1", 7))
    }

    @Test func v2BadMac() {
        #expect(dropReason(handler(), Fixture.v2Query(key: Fixture.otherKey), from: proxy) == "bad_mac")
        var tampered = Fixture.v2Query()
        tampered[62] ^= 1  // dst port
        #expect(dropReason(handler(), tampered, from: proxy) == "bad_mac")
        var macFlip = Fixture.v2Query()
        macFlip[159] ^= 0x80
        #expect(dropReason(handler(), macFlip, from: proxy) == "bad_mac")
    }

    @Test func v2Stale() {
        let h = handler()
        #expect(dropReason(h, Fixture.v2Query(nonce: 1, timestamp: Fixture.now - 31), from: proxy) == "stale")
        #expect(dropReason(h, Fixture.v2Query(nonce: 2, timestamp: Fixture.now + 31), from: proxy) == "stale")
        #expect(dropReason(h, Fixture.v2Query(nonce: 3, timestamp: Fixture.now - 30), from: proxy) == nil)
        #expect(dropReason(h, Fixture.v2Query(nonce: 4, timestamp: Fixture.now + 30), from: proxy) == nil)
    }

    @Test func v2Replayed() {
        let clock = NIOLockedValueBox(Fixture.now)
        let h = RequestHandler(policy: Fixture.policy(), clock: { clock.withLockedValue { $0 } })
        let query = Fixture.v2Query(nonce: 7)
        #expect(dropReason(h, query, from: proxy) == nil)
        #expect(dropReason(h, query, from: proxy) == "replay")
        // The same nonce with a new timestamp (a new MAC) is still a replay.
        clock.withLockedValue { $0 += 10 }
        #expect(dropReason(h, Fixture.v2Query(nonce: 7, timestamp: Fixture.now + 10), from: proxy) == "replay")
        #expect(dropReason(h, Fixture.v2Query(nonce: 8, timestamp: Fixture.now + 10), from: proxy) == nil)
        // Forged packets never reach the cache.
        #expect(dropReason(h, Fixture.v2Query(key: Fixture.otherKey, nonce: 9), from: proxy) == "bad_mac")
        #expect(dropReason(h, Fixture.v2Query(nonce: 9, timestamp: Fixture.now + 10), from: proxy) == nil)
    }

    @Test func replayCacheFullRefusesRatherThanForgets() {
        let h = handler(Fixture.policy(replayCapacity: 2))
        #expect(dropReason(h, Fixture.v2Query(nonce: 1), from: proxy) == nil)
        #expect(dropReason(h, Fixture.v2Query(nonce: 2), from: proxy) == nil)
        #expect(dropReason(h, Fixture.v2Query(nonce: 3), from: proxy) == "replay_cache_full")
        #expect(dropReason(h, Fixture.v2Query(nonce: 1), from: proxy) == "replay")
    }

    @Test func v2Disabled() {
        #expect(dropReason(handler(Fixture.policy(key: nil)), Fixture.v2Query(), from: proxy) == "v2_disabled")
    }

    @Test func malformedPackets() {
        let h = handler()
        #expect(dropReason(h, [], from: proxy) == "short")
        #expect(dropReason(h, [0x52, 0x50], from: proxy) == "short")
        #expect(dropReason(h, [UInt8](repeating: 0, count: 66), from: proxy) == "bad_magic")
        #expect(dropReason(h, Array(Fixture.legacyQuery().prefix(65)), from: proxy) == "short")
        #expect(dropReason(h, Fixture.legacyQuery() + [0], from: proxy) == "long")
        #expect(dropReason(h, Fixture.v2Query() + [0], from: proxy) == "long")
        #expect(dropReason(h, [UInt8](repeating: 0x41, count: 2000), from: proxy) == "long")
        var reply = try! LegacyPacket.encodeReply(to: LegacyPacket.decode(Fixture.legacyQuery(), expecting: .query),
                                                  answer: .notFound)
        #expect(dropReason(h, reply, from: proxy) == "bad_flags")
        reply = Fixture.legacyQuery()
        reply[13] = 0x03  // version 0x0403
        #expect(dropReason(h, reply, from: proxy) == "bad_version")
    }

    @Test func everyReplyIsTheQuerysSize() throws {
        let h = handler()
        var nonce: UInt64 = 0
        for make in [{ _ in Fixture.legacyQuery() }, { Fixture.v2Query(nonce: $0) },
                     { Fixture.v2Query(nonce: $0, Fixture.router6, Fixture.proxy6) }] as [(UInt64) -> [UInt8]] {
            for lookup in [Fixture.lookup, FakeLookup(), FakeLookup(failing: true)] {
                nonce += 1
                let q = make(nonce)
                let d = h.decide(q, from: proxy)
                guard case .lookup(let pending) = d else { Issue.record("dropped"); continue }
                let reply = try #require(h.reply(to: pending, result: lookup.lookup(pending.seen)))
                #expect(reply.count == q.count)
                #expect(pending.size == q.count)
            }
        }
    }

    @Test func seenTupleIsTheProxysView() {
        guard case .lookup(let q) = handler().decide(Fixture.legacyQuery(), from: proxy) else {
            Issue.record("dropped")
            return
        }
        #expect(q.seen.description == "10.77.2.1:40000->10.77.2.10:9199")
        #expect(q.version == "0x0402")
    }
}
