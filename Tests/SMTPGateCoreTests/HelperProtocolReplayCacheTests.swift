import Testing
@testable import SMTPGateCore

@Suite("Helper protocol v2: replay cache")
struct HelperProtocolReplayCacheTests {
    @Test func secondSightingIsAReplay() throws {
        var c = ReplayCache(capacity: 4, window: 30)
        try c.admit(nonce: 1, timestamp: 100, now: 100)
        try c.admit(nonce: 2, timestamp: 100, now: 100)
        #expect(throws: HelperPacketError.replay) { try c.admit(nonce: 1, timestamp: 100, now: 100) }
        #expect(throws: HelperPacketError.replay) { try c.admit(nonce: 2, timestamp: 100, now: 129) }
    }

    @Test func nonceIsHeldUntilItsTimestampIsStale() throws {
        // Stamped 100: fresh (so replayable) until 130 inclusive; later the decoder refuses it as stale.
        var c = ReplayCache(capacity: 4, window: 30)
        try c.admit(nonce: 7, timestamp: 100, now: 100)
        #expect(throws: HelperPacketError.replay) { try c.admit(nonce: 7, timestamp: 100, now: 130) }
        try c.admit(nonce: 7, timestamp: 131, now: 131)
        #expect(throws: HelperPacketError.replay) { try c.admit(nonce: 7, timestamp: 131, now: 131) }
    }

    @Test func aFutureTimestampIsHeldUntilItToo() throws {
        // Accepted at 100 while stamped 130 (a sender's clock ahead by the whole window): fresh until 160.
        var c = ReplayCache(capacity: 4, window: 30)
        try c.admit(nonce: 9, timestamp: 130, now: 100)
        #expect(throws: HelperPacketError.replay) { try c.admit(nonce: 9, timestamp: 130, now: 160) }
        try c.admit(nonce: 9, timestamp: 161, now: 161)
    }

    @Test func fullCacheRefusesNewNoncesButStillNamesReplays() throws {
        var c = ReplayCache(capacity: 2, window: 30)
        try c.admit(nonce: 1, timestamp: 100, now: 100)
        try c.admit(nonce: 2, timestamp: 110, now: 110)
        #expect(throws: HelperPacketError.replayCacheFull) { try c.admit(nonce: 3, timestamp: 120, now: 120) }
        #expect(throws: HelperPacketError.replay) { try c.admit(nonce: 1, timestamp: 100, now: 120) }
        #expect(throws: HelperPacketError.replayCacheFull) { try c.admit(nonce: 3, timestamp: 130, now: 130) }
        try c.admit(nonce: 3, timestamp: 131, now: 131)  // nonce 1 expired, nonce 2 still held
        #expect(throws: HelperPacketError.replay) { try c.admit(nonce: 2, timestamp: 110, now: 131) }
        #expect(throws: HelperPacketError.replayCacheFull) { try c.admit(nonce: 4, timestamp: 131, now: 131) }
    }

    @Test func steadyRateNeedsTwoWindowsOfRoomWithClocksInStep() throws {
        // 10 queries a second stamped with the current second, window 1: an entry lives for the second it
        // arrives and one more, so 20 entries suffice and 19 do not.
        var roomy = ReplayCache(capacity: 20, window: 1)
        var tight = ReplayCache(capacity: 19, window: 1)
        var tightFull = false
        var nonce: UInt64 = 0
        for second in UInt64(1000)..<UInt64(2000) {
            for _ in 0..<10 {
                nonce += 1
                try roomy.admit(nonce: nonce, timestamp: second, now: second)
                do {
                    try tight.admit(nonce: nonce, timestamp: second, now: second)
                } catch {
                    tightFull = tightFull || error == .replayCacheFull
                }
            }
        }
        #expect(tightFull)
    }

    @Test func anEntryBehindALaterOneKeepsItsSlotUntilThatOneExpires() throws {
        // Nonce 1 is stamped ahead, so nonce 2's slot behind it is freed only after 1's: conservative on room,
        // while nonce 2 itself stops counting as a replay once its own packet is stale.
        var c = ReplayCache(capacity: 3, window: 10)
        try c.admit(nonce: 1, timestamp: 1010, now: 1000)
        try c.admit(nonce: 2, timestamp: 995, now: 1000)
        try c.admit(nonce: 2, timestamp: 1006, now: 1006)
        #expect(throws: HelperPacketError.replayCacheFull) { try c.admit(nonce: 3, timestamp: 1006, now: 1006) }
        try c.admit(nonce: 3, timestamp: 1021, now: 1021)
    }

    @Test func clockStepsBackwardsStayConsistent() throws {
        var c = ReplayCache(capacity: 3, window: 10)
        try c.admit(nonce: 1, timestamp: 1000, now: 1000)
        try c.admit(nonce: 2, timestamp: 500, now: 500)
        #expect(throws: HelperPacketError.replay) { try c.admit(nonce: 1, timestamp: 500, now: 500) }
        #expect(throws: HelperPacketError.replay) { try c.admit(nonce: 2, timestamp: 500, now: 500) }
        try c.admit(nonce: 3, timestamp: 2000, now: 2000)
        try c.admit(nonce: 1, timestamp: 2000, now: 2000)
        try c.admit(nonce: 2, timestamp: 2000, now: 2000)
        #expect(throws: HelperPacketError.replay) { try c.admit(nonce: 3, timestamp: 2000, now: 2000) }
        #expect(throws: HelperPacketError.replayCacheFull) { try c.admit(nonce: 4, timestamp: 2000, now: 2000) }
    }

    @Test func hugeWindowAndClockDoNotOverflow() throws {
        var c = ReplayCache(capacity: 2, window: .max)
        try c.admit(nonce: 1, timestamp: .max, now: .max)
        #expect(throws: HelperPacketError.replay) { try c.admit(nonce: 1, timestamp: .max, now: .max) }
    }
}
