/// An approximate count over the last `seconds`, in 24 bytes: two fixed buckets (previous and current,
/// aligned to multiples of `seconds` since the epoch so that every proxy of a pool agrees on them), and
///
///     estimate = previous × (1 − f) + current,   f = elapsed part of the current bucket, 0 ≤ f < 1.
///
/// Error bound: events in the current bucket are counted exactly; the previous bucket's count P is
/// weighted by the part of it the window still covers, as if its events had been spread evenly. The
/// estimate therefore differs from the true count over the last `seconds` by at most P × max(f, 1 − f),
/// never more than P. Worst cases for a limit L checked before each event: a burst of L at the very end
/// of one bucket is weighted down as the next bucket passes, so up to just under 2 × L (plus the last
/// event's amount) can get through within one window length; a burst at the very start of a bucket is
/// still partly counted after it has left the window, so in the next bucket the client regains its
/// allowance gradually (L × f) instead of all at once. Evenly spread traffic is estimated exactly, and
/// two window lengths after the last event the estimate is 0.
///
/// The clock is the caller's: if `now` goes backwards (a clock step) events keep going into the
/// current bucket and the estimate treats `now` as the bucket's start; nothing traps or goes negative.
public struct SlidingWindowCounter: Sendable, Equatable {
    private let length: UInt32
    /// floor(now / seconds) of the current bucket; 32 bits last until 2106 even for 1-second windows.
    private var bucket: UInt32
    public private(set) var current: Double
    public private(set) var previous: Double

    /// `seconds` is clamped to 1...UInt32.max.
    public init(seconds: Int) {
        length = UInt32(min(max(seconds, 1), Int(UInt32.max)))
        bucket = 0
        current = 0
        previous = 0
    }

    /// A counter as a `RateRecord` describes it. Counts that are negative or not finite are taken as 0.
    public init(seconds: Int, bucketStart: Double, current: Double, previous: Double) {
        self.init(seconds: seconds)
        bucket = Self.index(bucketStart, length)
        self.current = Self.count(current)
        self.previous = Self.count(previous)
    }

    public var seconds: Int { Int(length) }

    /// Start of the current bucket, Unix seconds.
    public var bucketStart: Double { Double(bucket) * Double(length) }

    /// Adds `amount` (ignored unless positive and finite) at `now`.
    public mutating func add(_ amount: Double, now: Double) {
        let i = Self.index(now, length)
        if i > bucket {
            previous = i - bucket == 1 ? current : 0
            current = 0
            bucket = i
        }
        if amount > 0, amount.isFinite { current += amount }
    }

    public func estimate(now: Double) -> Double {
        let gap = Self.gap(now, bucket, length)
        if gap == 0 { return previous * (1 - fraction(now, start: bucketStart)) + current }
        guard gap == 1 else { return 0 }
        return current * (1 - fraction(now, start: bucketStart + Double(length)))
    }

    /// True when nothing counted is in reach any more (both buckets have left the window), so the
    /// counter can be dropped without changing any estimate.
    public func isIdle(now: Double) -> Bool {
        Self.isIdle(gap: Self.gap(now, bucket, length), current: current, previous: previous)
    }

    /// Shared with `DistinctCounter`: the same two buckets, whatever they count.
    static func isIdle(gap: UInt32, current: Double, previous: Double) -> Bool {
        switch gap {
        case 0: return current == 0 && previous == 0
        case 1: return current == 0
        default: return true
        }
    }

    private func fraction(_ now: Double, start: Double) -> Double {
        Self.fraction(now, start: start, length: length)
    }

    static func fraction(_ now: Double, start: Double, length: UInt32) -> Double {
        let f = (now - start) / Double(length)
        return f > 0 ? min(f, 1) : 0  // a time before the bucket (or NaN) counts as its start
    }

    static func index(_ now: Double, _ length: UInt32) -> UInt32 {
        let i = (now / Double(length)).rounded(.down)
        guard i >= 0 else { return 0 }  // also NaN
        return i >= Double(UInt32.max) ? UInt32.max : UInt32(i)
    }

    /// Buckets from `bucket` to the one holding `now`; 0 when `now` is in it or before it.
    static func gap(_ now: Double, _ bucket: UInt32, _ length: UInt32) -> UInt32 {
        let i = index(now, length)
        return i > bucket ? i - bucket : 0
    }

    static func count(_ x: Double) -> Double {
        x > 0 && x.isFinite ? x : 0
    }
}
