import SMTPGateCore
import SMTPGateRuntime
import Testing
@testable import SMTPGateHelper

struct HelperMetricsTests {
    @Test func lookupsAndDropsAreCountedAsTheCountersLineCountsThem() {
        let metrics = HelperMetrics(version: "9.9")
        let counters = HelperCounters(metrics: metrics)
        counters.looked(.found(Fixture.tuple(Fixture.client4, Fixture.mta4)), microseconds: 40)
        counters.looked(.notFound, microseconds: 300)
        counters.looked(.error("netlink"), microseconds: 2_000_000)
        counters.rejected("bad_mac")
        counters.rejected("bad_mac")
        let text = String(decoding: metrics.registry.render(), as: UTF8.self)
        #expect(text.contains(#"smtpgate_helper_queries_total{result="found"} 1"#))
        #expect(text.contains(#"smtpgate_helper_queries_total{result="not_found"} 1"#))
        #expect(text.contains(#"smtpgate_helper_queries_total{result="lookup_error"} 1"#))
        #expect(text.contains(#"smtpgate_helper_dropped_total{reason="bad_mac"} 2"#))
        #expect(text.contains(#"smtpgate_helper_lookup_duration_seconds_bucket{le="0.00005"} 1"#), "40 us in the first bucket")
        #expect(text.contains("smtpgate_helper_lookup_duration_seconds_count 3"))
        #expect(text.contains(#"smtpgate_helper_lookup_duration_seconds_bucket{le="1.0"} 2"#), "2 s is past the last bucket")
        #expect(counters.snapshot.queries == 3, "the counters line still counts")
    }
}
