import Testing
@testable import SMTPGateCore

@Suite struct LatencyHistogramTests {
    @Test func histogramPercentiles() {
        var h = LatencyHistogram()
        #expect(h.percentile(0.5) == 0 && h.mean == 0)
        for v in 1...1000 { h.record(microseconds: UInt64(v)) }
        #expect(h.count == 1000 && h.max == 1000 && h.mean == 500)
        let p50 = h.percentile(0.5), p99 = h.percentile(0.99)
        #expect(p50 >= 500 && p50 <= 516)
        #expect(p99 >= 990 && p99 <= 1000)
        h.record(microseconds: 5_000_000)
        #expect(h.percentile(1) == 5_000_000)
        h.record(microseconds: .max)
        #expect(h.max == .max)
    }

    @Test func histogramBucketsAreMonotone() {
        var last = -1
        for v in [0, 1, 31, 32, 33, 63, 64, 65, 1000, 1 << 20, 1 << 40, Int.max] {
            let i = LatencyHistogram.index(UInt64(v))
            #expect(i >= last)
            #expect(LatencyHistogram.upperEdge(i) >= UInt64(v))
            last = i
        }
    }
}
