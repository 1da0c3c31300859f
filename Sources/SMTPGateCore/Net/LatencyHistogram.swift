/// Lookup latencies in microseconds: a log-linear histogram (32 sub-buckets per power of two, so a
/// percentile is within about 3 % of the true value) plus exact count, sum and maximum. Fixed size,
/// whatever the number of samples.
public struct LatencyHistogram: Sendable, Equatable {
    static let subBits = 5
    static let sub = 1 << subBits
    private var buckets = [UInt64](repeating: 0, count: (64 - subBits) * (1 << subBits) + (1 << subBits))
    public private(set) var count: UInt64 = 0
    public private(set) var sum: UInt64 = 0
    public private(set) var max: UInt64 = 0

    public init() {}

    public mutating func record(microseconds v: UInt64) {
        buckets[Self.index(v)] += 1
        count += 1
        sum &+= v
        if v > max { max = v }
    }

    public var mean: UInt64 { count == 0 ? 0 : sum / count }

    /// The value at quantile q (0...1): the upper edge of the bucket holding it, capped at the maximum.
    public func percentile(_ q: Double) -> UInt64 {
        guard count > 0 else { return 0 }
        let rank = Swift.max(1, UInt64((Double(count) * q).rounded(.up)))
        var seen: UInt64 = 0
        for (i, n) in buckets.enumerated() where n > 0 {
            seen += n
            if seen >= rank { return Swift.min(Self.upperEdge(i), max) }
        }
        return max
    }

    static func index(_ v: UInt64) -> Int {
        if v < UInt64(sub) { return Int(v) }
        let top = 63 - v.leadingZeroBitCount           // position of the highest bit, >= subBits
        let shift = top - subBits
        let mantissa = Int((v >> UInt64(shift)) & UInt64(sub - 1))
        return (shift + 1) * sub + mantissa
    }

    static func upperEdge(_ i: Int) -> UInt64 {
        if i < sub { return UInt64(i) }
        let shift = i / sub - 1
        let mantissa = UInt64(i % sub)
        let low = (UInt64(sub) | mantissa) << UInt64(shift)
        return low + (UInt64(1) << UInt64(shift)) - 1
    }
}
