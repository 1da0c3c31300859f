import Testing
@testable import SMTPGateCore

struct MetricFamilyTests {
    @Test(arguments: MetricFamily.allCases)
    func namesFollowPrometheusConventions(_ f: MetricFamily) {
        #expect(f.name.hasPrefix("smtpgate_"))
        #expect(f.name.utf8.allSatisfy { ($0 >= 0x61 && $0 <= 0x7a) || $0 == 0x5f || ($0 >= 0x30 && $0 <= 0x39) })
        switch f.kind {
        case .counter: #expect(f.name.hasSuffix("_total"))
        case .histogram: #expect(f.name.hasSuffix("_seconds"), "base unit")
        case .gauge: #expect(!f.name.hasSuffix("_total"))
        }
        #expect(!f.help.isEmpty && !f.help.contains("\n"))
        #expect(Set(f.labels).count == f.labels.count)
    }

    @Test func noLabelCarriesClientControlledOrUnboundedValues() {
        let unbounded: Set<String> = ["client", "address", "ip", "helo", "sender", "recipient", "session", "ident", "destination"]
        for f in MetricFamily.allCases {
            #expect(Set(f.labels).isDisjoint(with: unbounded), "\(f.name): \(f.labels)")
        }
    }

    @Test func replyClassesAreAClosedSet() {
        #expect(ReplyClass.of(250) == "2xx")
        #expect(ReplyClass.of(451) == "4xx")
        #expect(ReplyClass.of(554) == "5xx")
        #expect(ReplyClass.of(nil) == "none")
        #expect(ReplyClass.of(999) == "none")
        #expect(ReplyClass.of(-1) == "none")
    }

    @Test func pageTotalsSumEachCounterFamilyAndSkipEverythingElse() {
        let text = """
        # HELP smtpgate_sessions_total x
        # TYPE smtpgate_sessions_total counter
        smtpgate_sessions_total{listener="a",closed_by="client"} 3
        smtpgate_sessions_total{listener="b",closed_by="server"} 2
        smtpgate_sessions_open{listener="a"} 7
        smtpgate_log_lines_dropped_total 1
        not_ours_total 100
        smtpgate_refusals_total{listener="a",cause="x"} garbage
        smtpgate_refusals_total
        """
        let totals = ExpositionTotals.counters(Array(text.utf8))
        #expect(totals.map(\.name) == ["smtpgate_sessions_total", "smtpgate_log_lines_dropped_total"])
        #expect(totals.map(\.value) == [5, 1])
    }

    @Test func listenerCountsReadTheirSeriesAndSurviveHostileLabels() {
        let text = #"""
        smtpgate_sessions_total{listener="in",closed_by="client"} 3
        smtpgate_sessions_total{listener="in",closed_by="proxy"} 2
        smtpgate_refusals_total{listener="in",cause="locked"} 2
        smtpgate_transactions_total{listener="in",reply_class="2xx"} 4
        smtpgate_bytes_total{listener="in",direction="from_client"} 1000
        smtpgate_bytes_total{listener="in",direction="to_client"} 300
        smtpgate_forwards_total{listener="web",result="done-remote-closed"} 5
        smtpgate_forwards_total{listener="web",result="denied"} 2
        smtpgate_forwards_total{listener="web",result="timeout"} 1
        smtpgate_bytes_total{listener="a\"b\\c\nd",direction="to_client"} 7
        smtpgate_bytes_total{listener="open,direction="to_client"} 9
        smtpgate_bytes_total{listener="in"
        smtpgate_sessions_total{listener="in",closed_by="client"} -4
        smtpgate_sessions_total{listener="in",closed_by="client"} +Inf
        """#
        let counts = ExpositionTotals.listeners(Array(text.utf8))
        #expect(counts["in"] == ListenerCounts(ended: 5, refused: 2, transactions: 4, bytesIn: 1000, bytesOut: 300))
        #expect(counts["web"] == ListenerCounts(ended: 8, refused: 2), "a forward refused is ended too; relayed results are not refusals")
        #expect(counts["a\"b\\c\nd"]?.bytesOut == 7, "escaped label values read back")
        #expect(counts.count == 3, "an unclosed label value, a cut line and impossible values count nowhere")
    }
}

struct AdminRouteTests {
    @Test func pathsAndMethods() {
        #expect(AdminRoute.of(method: "GET", uri: "/metrics") == .metrics)
        #expect(AdminRoute.of(method: "GET", uri: "/metrics?name[]=x") == .metrics, "Prometheus may add a query")
        #expect(AdminRoute.of(method: "HEAD", uri: "/") == .statusPage)
        #expect(AdminRoute.of(method: "GET", uri: "/status") == .statusPage)
        #expect(AdminRoute.of(method: "GET", uri: "/healthz") == .health)
        #expect(AdminRoute.of(method: "POST", uri: "/metrics") == .methodNotAllowed)
        #expect(AdminRoute.of(method: "DELETE", uri: "/nothing") == .notFound)
        #expect(AdminRoute.of(method: "GET", uri: "/metrics/../etc/passwd") == .notFound)
        #expect(AdminRoute.of(method: "GET", uri: "") == .notFound)
        #expect(AdminRoute.of(method: "GET", uri: String(repeating: "/", count: 10_000)) == .notFound)
    }

    @Test func endpointsAreLiteralAddressesWithAPort() {
        #expect(AdminEndpoint("127.0.0.1:9125")?.description == "127.0.0.1:9125")
        #expect(AdminEndpoint("[::1]:9125")?.description == "[::1]:9125")
        #expect(AdminEndpoint("localhost:9125") == nil, "no DNS")
        #expect(AdminEndpoint("/run/x.sock") == nil)
        #expect(AdminEndpoint("127.0.0.1:0") == nil)
        #expect(AdminEndpoint("127.0.0.1:65536") == nil)
        #expect(AdminEndpoint("::1:9125") == nil)
    }
}
