import Testing
@testable import SMTPGateCore

@Suite("Helper protocol v2: replay cache")
struct HelperProtocolReplayCacheTests {
    @Test func secondSightingIsAReplay() throws {
        var c = ReplayCache(capacity: 4, window: 30)
        try c.admit(nonce: 1, now: 100)
        try c.admit(nonce: 2, now: 100)
        #expect(throws: HelperPacketError.replay) { try c.admit(nonce: 1, now: 100) }
        #expect(throws: HelperPacketError.replay) { try c.admit(nonce: 2, now: 129) }
    }

    @Test func nonceIsHeldUntilNoTimestampCouldStillBeFresh() throws {
        // Admitted at 100 with a timestamp up to 130, the query stays fresh until 160 inclusive.
        var c = ReplayCache(capacity: 4, window: 30)
        try c.admit(nonce: 7, now: 100)
        #expect(throws: HelperPacketError.replay) { try c.admit(nonce: 7, now: 160) }
        try c.admit(nonce: 7, now: 161)
        #expect(throws: HelperPacketError.replay) { try c.admit(nonce: 7, now: 161) }
    }

    @Test func fullCacheRefusesNewNoncesButStillNamesReplays() throws {
        var c = ReplayCache(capacity: 2, window: 30)
        try c.admit(nonce: 1, now: 100)
        try c.admit(nonce: 2, now: 110)
        #expect(throws: HelperPacketError.replayCacheFull) { try c.admit(nonce: 3, now: 120) }
        #expect(throws: HelperPacketError.replay) { try c.admit(nonce: 1, now: 120) }
        #expect(throws: HelperPacketError.replayCacheFull) { try c.admit(nonce: 3, now: 160) }
        try c.admit(nonce: 3, now: 161)  // nonce 1 expired, nonce 2 still held
        #expect(throws: HelperPacketError.replay) { try c.admit(nonce: 2, now: 161) }
        #expect(throws: HelperPacketError.replayCacheFull) { try c.admit(nonce: 4, now: 161) }
    }

    @Test func steadyRateNeedsExactlyThreeWindowsOfRoom() throws {
        // 10 queries a second, window 1: entries live for the second they arrive and two more.
        var roomy = ReplayCache(capacity: 30, window: 1)
        var tight = ReplayCache(capacity: 29, window: 1)
        var tightFull = false
        var nonce: UInt64 = 0
        for second in UInt64(1000)..<UInt64(2000) {
            for _ in 0..<10 {
                nonce += 1
                try roomy.admit(nonce: nonce, now: second)
                do { try tight.admit(nonce: nonce, now: second) } catch { tightFull = tightFull || error == .replayCacheFull }
            }
        }
        #expect(tightFull)
    }

    @Test func clockStepsBackwardsStayConsistent() throws {
        var c = ReplayCache(capacity: 3, window: 10)
        try c.admit(nonce: 1, now: 1000)
        try c.admit(nonce: 2, now: 500)
        #expect(throws: HelperPacketError.replay) { try c.admit(nonce: 1, now: 500) }
        #expect(throws: HelperPacketError.replay) { try c.admit(nonce: 2, now: 500) }
        try c.admit(nonce: 3, now: 2000)
        try c.admit(nonce: 1, now: 2000)
        try c.admit(nonce: 2, now: 2000)
        #expect(throws: HelperPacketError.replay) { try c.admit(nonce: 3, now: 2000) }
        #expect(throws: HelperPacketError.replayCacheFull) { try c.admit(nonce: 4, now: 2000) }
    }

    @Test func hugeWindowAndClockDoNotOverflow() throws {
        var c = ReplayCache(capacity: 2, window: .max)
        try c.admit(nonce: 1, now: .max)
        #expect(throws: HelperPacketError.replay) { try c.admit(nonce: 1, now: .max) }
    }
}
