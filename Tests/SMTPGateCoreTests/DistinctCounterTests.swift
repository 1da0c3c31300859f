import Testing
@testable import SMTPGateCore

@Suite struct DistinctCounterTests {
    @Test func sameHashCountsOnce() {
        var d = DistinctCounter(seconds: 60, cap: 100)
        d.insert(1, now: 600)
        d.insert(1, now: 610)
        d.insert(2, now: 620)
        #expect(d.estimate(now: 630) == 2)
    }

    @Test func capIsRespected() {
        var d = DistinctCounter(seconds: 60, cap: 5)
        for h in 0..<1000 as Range<UInt64> { d.insert(h, now: 600) }
        #expect(d.estimate(now: 600) == 5)
        #expect(d.counts.current == 5)
        #expect(DistinctCounter(seconds: 60, cap: 1 << 40).cap == 65_536)
        #expect(DistinctCounter(seconds: 60, cap: -1).cap == 1)
    }

    @Test func previousBucketDecaysAndRepeatsAreNotCountedTwice() {
        var d = DistinctCounter(seconds: 60, cap: 100)
        for h in 0..<6 as Range<UInt64> { d.insert(h, now: 600) }
        #expect(d.estimate(now: 660) == 6)
        #expect(d.estimate(now: 690) == 3)
        d.insert(0, now: 690)  // seen in the previous bucket too
        d.insert(99, now: 690)
        #expect(d.estimate(now: 690) == 2 + 5 * 0.5)
        #expect(d.estimate(now: 780) == 0)
        #expect(d.isIdle(now: 780))
        #expect(!d.isIdle(now: 779))
    }

    @Test func twoWindowsLaterStartsFresh() {
        var d = DistinctCounter(seconds: 10, cap: 10)
        d.insert(1, now: 0)
        d.insert(2, now: 30)
        #expect(d.counts.previous == 0)
        #expect(d.estimate(now: 30) == 1)
    }

    @Test func timeGoingBackwards() {
        var d = DistinctCounter(seconds: 10, cap: 10)
        d.insert(1, now: 100)
        d.insert(2, now: 5)
        d.insert(3, now: .nan)
        #expect(d.estimate(now: 5) == 3)
        #expect(d.bucketStart == 100)
    }

    @Test func restoredCountsAreCarried() {
        var d = DistinctCounter(seconds: 60, cap: 5, bucketStart: 600, current: 3, previous: 1e9)
        #expect(d.counts.current == 3)
        #expect(d.counts.previous == 5)
        #expect(d.estimate(now: 630) == 3 + 5 * 0.5)
        d.insert(7, now: 630)
        d.insert(8, now: 630)
        d.insert(9, now: 630)  // the cap counts carried entries too
        #expect(d.counts.current == 5)
    }
}

@Suite struct DistinctCounterMembershipTests {
    @Test func aCountedDestinationIsKnownUntilItLeavesTheWindow() {
        var d = DistinctCounter(seconds: 60, cap: 10)
        d.insert(7, now: 6000)
        #expect(d.contains(7, now: 6010) && !d.contains(8, now: 6010))
        #expect(d.contains(7, now: 6070), "still in the previous bucket")
        #expect(!d.contains(7, now: 6130), "two windows later it is gone")
    }
}
