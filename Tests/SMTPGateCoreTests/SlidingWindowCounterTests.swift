import Testing
@testable import SMTPGateCore

@Suite struct SlidingWindowCounterTests {
    @Test func countsExactlyWithinTheCurrentBucket() {
        var c = SlidingWindowCounter(seconds: 60)
        for t in stride(from: 600.0, to: 660, by: 10) { c.add(1, now: t) }
        #expect(c.estimate(now: 659) == 6)
        #expect(c.bucketStart == 600)
        #expect(c.current == 6)
        #expect(c.previous == 0)
    }

    @Test func atExactlyTheEdgeThePreviousBucketCountsFully() {
        var c = SlidingWindowCounter(seconds: 60)
        c.add(10, now: 630)
        #expect(c.estimate(now: 660) == 10)
        c.add(1, now: 660)
        #expect(c.estimate(now: 660) == 11)
        #expect(c.previous == 10)
        #expect(c.bucketStart == 660)
    }

    @Test func decaysLinearlyThroughTheNextWindow() {
        var c = SlidingWindowCounter(seconds: 60)
        c.add(60, now: 659)
        #expect(c.estimate(now: 675) == 45)
        #expect(c.estimate(now: 690) == 30)
        #expect(c.estimate(now: 705) == 15)
        #expect(abs(c.estimate(now: 719.5) - 0.5) < 1e-9)
        #expect(c.estimate(now: 720) == 0)
        #expect(!c.isIdle(now: 719))
        #expect(c.isIdle(now: 720))
    }

    @Test func twoWindowsLaterEverythingIsGone() {
        var c = SlidingWindowCounter(seconds: 60)
        c.add(5, now: 600)
        c.add(7, now: 660)
        let expected: Double = 5.0 / 3 + 7
        #expect(abs(c.estimate(now: 700) - expected) < 1e-9)
        c.add(1, now: 780)
        #expect(c.previous == 0)
        #expect(c.current == 1)
        #expect(c.estimate(now: 780) == 1)
    }

    @Test func timeGoingBackwardsNeitherTrapsNorGoesNegative() {
        var c = SlidingWindowCounter(seconds: 60)
        c.add(4, now: 600)
        c.add(6, now: 660)
        c.add(1, now: 100)  // clock stepped back: counted into the current bucket
        #expect(c.bucketStart == 660)
        #expect(c.current == 7)
        #expect(c.estimate(now: 100) == 11)
        #expect(c.estimate(now: -1e300) == 11)
        c.add(1, now: -5)
        c.add(1, now: .nan)
        #expect(c.estimate(now: .nan) == 13)
        #expect(c.estimate(now: .infinity) == 0)
        c.add(1, now: .infinity)
        #expect(c.estimate(now: .infinity) == 1)
    }

    @Test func badAmountsAreIgnored() {
        var c = SlidingWindowCounter(seconds: 10)
        c.add(-5, now: 0)
        c.add(.nan, now: 0)
        c.add(.infinity, now: 0)
        c.add(0, now: 0)
        #expect(c.estimate(now: 1) == 0)
        #expect(c.isIdle(now: 1))
    }

    @Test func restoresFromARecord() {
        let c = SlidingWindowCounter(seconds: 60, bucketStart: 660, current: 3, previous: 6)
        #expect(c.bucketStart == 660)
        #expect(abs(c.estimate(now: 680) - 7) < 1e-9)
        let bad = SlidingWindowCounter(seconds: 60, bucketStart: .nan, current: -1, previous: .infinity)
        #expect(bad.bucketStart == 0)
        #expect(bad.current == 0 && bad.previous == 0)
        #expect(SlidingWindowCounter(seconds: 0).seconds == 1)
        #expect(SlidingWindowCounter(seconds: Int.max).seconds == Int(UInt32.max))
    }

    @Test func staysSmall() {
        #expect(MemoryLayout<SlidingWindowCounter>.size == 24)
    }
}
