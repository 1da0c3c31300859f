/// An approximate count of distinct 64-bit hashes (destination MTAs for `ratelimit_destinations`) over
/// the last `seconds`, with the same two aligned buckets as `SlidingWindowCounter`:
///
///     estimate = |current| + |previous not seen again in current| × (1 − f)
///
/// Each bucket stores at most `cap` hashes; further new hashes are not stored (and not counted),
/// because only "has the limit been reached" matters and the caller passes a cap just above the limit.
/// Memory is therefore at most 2 × `cap` hashes.
///
/// Error bound: the current bucket is exact up to `cap` (a true count above `cap` reads as `cap`);
/// hashes seen only in the previous bucket are weighted as if spread evenly over it, with the same
/// worst cases as `SlidingWindowCounter` (off by at most that many, up to just under twice the limit
/// let through per window length). Two destinations whose hashes collide count once; with 64-bit
/// hashes and a few thousand destinations that is negligible. Counts restored without their hashes
/// (`restore`) are carried as plain numbers, so a destination seen again after a restore may count
/// twice until its bucket leaves the window: restored state errs towards limiting, never towards
/// letting more through.
public struct DistinctCounter: Sendable, Equatable {
    static let maxCap = 65_536

    private let length: UInt32
    private var bucket: UInt32 = 0
    public let cap: Int
    private var current: Set<UInt64> = []
    private var previous: Set<UInt64> = []
    /// Hashes of `current` that are also in `previous`, so the union needs no scan.
    private var overlap = 0
    private var carriedCurrent: Double = 0
    private var carriedPrevious: Double = 0

    /// `seconds` is clamped to 1...UInt32.max, `cap` to 1...65536.
    public init(seconds: Int, cap: Int) {
        length = UInt32(min(max(seconds, 1), Int(UInt32.max)))
        self.cap = min(max(cap, 1), Self.maxCap)
    }

    /// Restores counts saved by `counts`; the hashes themselves are not kept by the store.
    public init(seconds: Int, cap: Int, bucketStart: Double, current: Double, previous: Double) {
        self.init(seconds: seconds, cap: cap)
        bucket = SlidingWindowCounter.index(bucketStart, length)
        carriedCurrent = min(SlidingWindowCounter.count(current), Double(self.cap))
        carriedPrevious = min(SlidingWindowCounter.count(previous), Double(self.cap))
    }

    public var seconds: Int { Int(length) }
    public var bucketStart: Double { Double(bucket) * Double(length) }

    /// The two bucket counts, for `RateRecord`.
    public var counts: (current: Double, previous: Double) {
        (Double(current.count) + carriedCurrent, Double(previous.count) + carriedPrevious)
    }

    public mutating func insert(_ hash: UInt64, now: Double) {
        let gap = SlidingWindowCounter.gap(now, bucket, length)
        if gap > 0 {
            if gap == 1 {
                swap(&previous, &current)
                carriedPrevious = carriedCurrent
            } else {
                previous.removeAll()
                carriedPrevious = 0
            }
            current.removeAll(keepingCapacity: true)
            carriedCurrent = 0
            overlap = 0
            bucket = SlidingWindowCounter.index(now, length)
        }
        guard Double(current.count) + carriedCurrent < Double(cap), !current.contains(hash) else { return }
        current.insert(hash)
        if previous.contains(hash) { overlap += 1 }
    }

    /// Whether `hash` is counted in the window already: a client going back to a destination it uses
    /// adds nothing to this limit.
    public func contains(_ hash: UInt64, now: Double) -> Bool {
        let gap = SlidingWindowCounter.gap(now, bucket, length)
        if gap > 1 { return false }
        return current.contains(hash) || (gap == 0 && previous.contains(hash))
    }

    public func estimate(now: Double) -> Double {
        let gap = SlidingWindowCounter.gap(now, bucket, length)
        if gap > 1 { return 0 }
        let inCurrent = Double(current.count) + carriedCurrent
        if gap == 1 { return inCurrent * (1 - fraction(now, start: bucketStart + Double(length))) }
        let earlier = Double(previous.count - overlap) + carriedPrevious
        return earlier * (1 - fraction(now, start: bucketStart)) + inCurrent
    }

    public func isIdle(now: Double) -> Bool {
        let (c, p) = counts
        return SlidingWindowCounter.isIdle(gap: SlidingWindowCounter.gap(now, bucket, length), current: c, previous: p)
    }

    private func fraction(_ now: Double, start: Double) -> Double {
        SlidingWindowCounter.fraction(now, start: start, length: length)
    }
}
