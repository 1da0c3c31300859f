import Testing
@testable import SMTPGateCore

@Suite("DNS answer cache")
struct AnswerCacheTests {
    static let listed = DNSAnswer.records([.address([127, 0, 0, 2])], ttl: 60)

    @Test func anAnswerIsKeptForItsTTLAndNoLonger() {
        var c = AnswerCache(capacity: 10)
        let k = AnswerCache.Key("2.0.0.127.bl.example", .a)
        c.keep(Self.listed, for: k, ttl: 60, now: 100)
        #expect(c.answer(k, now: 159.9) == Self.listed)
        #expect(c.answer(AnswerCache.Key("2.0.0.127.BL.EXAMPLE", .a), now: 120) == Self.listed)
        #expect(c.answer(AnswerCache.Key("2.0.0.127.bl.example", .txt), now: 120) == nil)
        #expect(c.answer(k, now: 160) == nil && c.count == 0, "expired answers are dropped when asked")
    }

    @Test func failuresAndZeroTTLsAreNeverKept() {
        var c = AnswerCache(capacity: 10)
        c.keep(.failure(.timeout), for: .init("a.example", .a), ttl: 300, now: 0)
        c.keep(.nxdomain, for: .init("b.example", .a), ttl: 0, now: 0)
        c.keep(.noData, for: .init("c.example", .a), ttl: -5, now: 0)
        #expect(c.count == 0)
        c.keep(.nxdomain, for: .init("d.example", .a), ttl: 5, now: 0)
        #expect(c.answer(.init("d.example", .a), now: 1) == .nxdomain)
    }

    @Test func aFullCacheSweepsExpiredAnswersAtMostOnceASecondAndOtherwiseKeepsNothingNew() {
        var c = AnswerCache(capacity: 3)
        for i in 0..<3 { c.keep(.nxdomain, for: .init("n\(i).example", .a), ttl: i == 0 ? 1 : 100, now: 0) }
        c.keep(.nxdomain, for: .init("new.example", .a), ttl: 100, now: 0.5)
        #expect(c.count == 3 && c.answer(.init("new.example", .a), now: 0.5) == nil, "full, nothing expired")
        c.keep(.nxdomain, for: .init("new.example", .a), ttl: 100, now: 1.2)
        #expect(c.answer(.init("new.example", .a), now: 1.2) == nil, "swept less than a second ago")
        c.keep(.nxdomain, for: .init("new.example", .a), ttl: 100, now: 1.6)
        #expect(c.answer(.init("new.example", .a), now: 1.6) == .nxdomain && c.count == 3, "n0 expired and made room")
        c.keep(.noData, for: .init("n1.example", .a), ttl: 100, now: 1.7)
        #expect(c.answer(.init("n1.example", .a), now: 1.7) == .noData, "a name already kept is replaced however full")
    }

    @Test func aCacheOfNothingKeepsNothing() {
        var c = AnswerCache(capacity: -1)
        c.keep(Self.listed, for: .init("a.example", .a), ttl: 60, now: 0)
        #expect(c.capacity == 0 && c.count == 0)
    }
}
