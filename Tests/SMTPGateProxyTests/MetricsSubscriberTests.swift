@testable import SMTPGateCore
import Testing
@testable import SMTPGateProxy

/// The event stream counted into the exposition text a scraper reads.
struct MetricsSubscriberTests {
    let ctx = SessionContext(id: "s1", listener: "in", client: "192.0.2.7:4000", local: "-", destination: "198.51.100.1:25")

    func run(_ events: [ProxyEvent], locks: Int? = nil) -> String {
        let daemon = ProxyMetrics(version: "9.9", started: 1000)
        let sub = MetricsSubscriber(daemon: daemon, listener: daemon.listener("in"))
        for e in events { _ = sub.receive(e) }
        return String(decoding: daemon.render(openSessions: [("in", 4)], locks: locks, logDropped: 0), as: UTF8.self)
    }

    func transaction(result: Int?, number: Int? = 1) -> Transaction {
        Transaction(number: number, helo: nil, mailFrom: "a@example.org", mailCode: number == nil ? 550 : 250, recipients: [],
                    size: 10, resultCode: result)
    }

    @Test func sessionsTransactionsRecipientsAndBytes() {
        let text = run([
            .session(ctx, .replied(.rcpt, code: 250)), .session(ctx, .replied(.rcpt, code: 550)),
            .session(ctx, .replied(.rcpt, code: 250)), .session(ctx, .replied(.mail, code: 250)),
            .session(ctx, .transaction(transaction(result: 250))), .session(ctx, .transaction(transaction(result: nil))),
            .session(ctx, .transaction(transaction(result: nil, number: nil))),
            .closed(ctx, SessionLog.Totals(helo: nil, transactions: 2, bytesIn: 1200, bytesOut: 300, duration: 1, closedBy: "server", reason: "x")),
        ])
        #expect(text.contains(#"smtpgate_recipients_total{listener="in",reply_class="2xx"} 2"#))
        #expect(text.contains(#"smtpgate_recipients_total{listener="in",reply_class="5xx"} 1"#))
        #expect(text.contains(#"smtpgate_transactions_total{listener="in",reply_class="2xx"} 1"#))
        #expect(text.contains(#"smtpgate_transactions_total{listener="in",reply_class="none"} 1"#))
        #expect(text.contains(#"smtpgate_sessions_total{listener="in",closed_by="server"} 1"#))
        #expect(text.contains(#"smtpgate_bytes_total{listener="in",direction="from_client"} 1200"#))
        #expect(text.contains(#"smtpgate_bytes_total{listener="in",direction="to_client"} 300"#))
        #expect(text.contains(#"smtpgate_sessions_open{listener="in"} 4"#))
        #expect(text.contains(#"smtpgate_build_info{version="9.9"} 1"#))
        #expect(!text.contains("192.0.2.7"), "never the client")
    }

    @Test func refusalsRateLimitsLocksWarningsAndScans() throws {
        let key = try ClientKey(parsing: "192.0.2.7", ipv6Prefix: 64)
        let lock = ClientLock(key: key, cause: .virus, reason: "Eicar", created: 0, expires: 60)
        let rate = RateExceeded(kind: .messages, window: RateWindow(limit: 5, seconds: 60), count: 9)
        let text = run([
            .refused(ctx, .tooManyFromHost(limit: 1)), .refused(ctx, .rateLimited(rate)), .rateLimited(ctx, rate),
            .locked(ctx, lock, source: "x", finding: nil),
            .commandRefused(ctx, CommandRefusal(point: .rcpt(to: "b@x"), reply: PolicyReply(code: 554, enhanced: "5.7.1", text: "no", why: .restriction))),
            .commandRefused(ctx, CommandRefusal(point: .hello(name: "h"), reply: PolicyReply(code: 554, enhanced: "5.7.1", text: "no", why: .restriction), warning: true)),
            .warned(ctx, .earlyTalker(bytes: 3)),
            .session(ctx, .limitReached(limit: "max_recipients", value: 5)),
            .scanned(ctx, transaction: 1, ScanReport(scanner: .clamd, result: .virus("Eicar-Test-Signature"), seconds: 0.03, size: 68),
                     ScanPolicy(spamThreshold: 5, rejectSpam: true, ignoreErrors: false)),
            .scanned(ctx, transaction: 1, ScanReport(scanner: .spamd, result: .score(7.5), seconds: 0.2, size: 68),
                     ScanPolicy(spamThreshold: 5, rejectSpam: true, ignoreErrors: false)),
        ], locks: 1)
        #expect(text.contains(#"smtpgate_refusals_total{listener="in",cause="max_per_host"} 1"#))
        #expect(text.contains(#"smtpgate_refusals_total{listener="in",cause="ratelimit"} 1"#))
        #expect(text.contains(#"smtpgate_ratelimit_hits_total{listener="in",kind="messages"} 2"#))
        #expect(text.contains(#"smtpgate_locks_created_total{cause="virus"} 1"#))
        #expect(text.contains("smtpgate_locks_active 1"))
        #expect(text.contains(#"smtpgate_command_refusals_total{listener="in",command="rcpt"} 1"#))
        #expect(text.contains(#"smtpgate_policy_warnings_total{listener="in"} 2"#))
        #expect(text.contains(#"smtpgate_limit_hits_total{listener="in",limit="max_recipients"} 1"#))
        #expect(text.contains(#"smtpgate_scans_total{scanner="clamd",result="virus"} 1"#))
        #expect(text.contains(#"smtpgate_scans_total{scanner="spamd",result="spam"} 1"#))
        #expect(!text.contains("Eicar"), "a virus name is never a label")
        #expect(text.contains(#"smtpgate_scan_duration_seconds_count{scanner="spamd"} 1"#))
    }

    @Test func aListenerGoneFromTheStatusShowsNoOpenSessionsAndLocksNeedAbuseControl() {
        let daemon = ProxyMetrics(version: "1", started: 0)
        _ = daemon.render(openSessions: [("old", 3), ("in", 1)], locks: nil, logDropped: 0)
        let text = String(decoding: daemon.render(openSessions: [("in", 2)], locks: nil, logDropped: 0), as: UTF8.self)
        #expect(text.contains(#"smtpgate_sessions_open{listener="old"} 0"#))
        #expect(text.contains(#"smtpgate_sessions_open{listener="in"} 2"#))
        #expect(!text.contains("smtpgate_locks_active"), "abuse control off: no such series")
    }

    @Test func droppedLogLinesCountOnlyWhatIsNew() {
        let daemon = ProxyMetrics(version: "1", started: 0)
        _ = daemon.render(openSessions: [], locks: nil, logDropped: 5)
        _ = daemon.render(openSessions: [], locks: nil, logDropped: 5)
        let text = String(decoding: daemon.render(openSessions: [], locks: nil, logDropped: 7), as: UTF8.self)
        #expect(text.contains("smtpgate_log_lines_dropped_total 7"))
    }

    @Test func serviceObservationsAndForwardsAreCountedWithBoundedLabels() {
        let daemon = ProxyMetrics(version: "9.9", started: 1000)
        daemon.observe(.helperLookup(.found, seconds: 0.002))
        daemon.observe(.helperLookup(.error, seconds: nil))
        daemon.observe(.dnsLookup(.a, .nxdomain, seconds: 0.02))
        daemon.observe(.dnsLookup(.a, .cached, seconds: nil))
        daemon.observe(.dnsLookup(.txt, .init(.failure(.serverFailure(rcode: 2))), seconds: 0.5))
        daemon.observe(.policyQuery(service: "inet:127.0.0.1:10023", .answered, seconds: 0.01))
        daemon.observe(.actionRun(.init(.exited(0))))
        daemon.observe(.actionRun(.init(.timedOut)))
        let web = daemon.forwardListener("web")
        #expect(daemon.forwardListener("web") === web, "one set of counters per listener")
        var c = ForwardLog.Connection(session: "f1", listener: "web", client: "192.0.2.7:4000", destination: "10.0.0.2:443")
        c.bytesIn = 10
        c.bytesOut = 20
        c.result = .doneLocalClosed
        web.ended(c)
        let text = String(decoding: daemon.render(openSessions: [], locks: nil, logDropped: 0), as: UTF8.self)
        #expect(text.contains(#"smtpgate_remote_udp_lookups_total{result="found"} 1"#))
        #expect(text.contains(#"smtpgate_remote_udp_lookups_total{result="error"} 1"#))
        #expect(text.contains(#"smtpgate_remote_udp_lookups_total{result="timeout"} 0"#), "every result is there from the start")
        #expect(text.contains("smtpgate_remote_udp_lookup_duration_seconds_count 1"), "only what waited is timed")
        #expect(text.contains(#"smtpgate_dns_lookups_total{type="a",result="nxdomain"} 1"#))
        #expect(text.contains(#"smtpgate_dns_lookups_total{type="a",result="cached"} 1"#))
        #expect(text.contains(#"smtpgate_dns_lookups_total{type="txt",result="servfail"} 1"#))
        #expect(text.contains(#"smtpgate_dns_lookup_duration_seconds_count{type="a"} 1"#))
        #expect(text.contains(#"smtpgate_policy_service_queries_total{service="inet:127.0.0.1:10023",result="answered"} 1"#))
        #expect(text.contains(#"smtpgate_policy_service_duration_seconds_count{service="inet:127.0.0.1:10023"} 1"#))
        #expect(text.contains(#"smtpgate_action_runs_total{result="ok"} 1"#))
        #expect(text.contains(#"smtpgate_action_runs_total{result="timeout"} 1"#))
        #expect(text.contains(#"smtpgate_forwards_total{listener="web",result="done-local-closed"} 1"#))
        #expect(text.contains(#"smtpgate_forwards_total{listener="web",result="denied"} 0"#))
        #expect(text.contains(#"smtpgate_bytes_total{listener="web",direction="from_client"} 10"#))
        #expect(text.contains(#"smtpgate_bytes_total{listener="web",direction="to_client"} 20"#))
        #expect(!text.contains("192.0.2.7") && !text.contains("smtpgate_sessions_total{listener=\"web\""))
    }

    @Test(arguments: [(ActionLog.Outcome.exited(0), "ok"), (.exited(2), "exit_nonzero"), (.signalled(9), "signalled"),
                      (.timedOut, "timeout"), (.unknown, "failed")])
    func actionOutcomesMapToAClosedSet(_ outcome: ActionLog.Outcome, _ label: String) {
        #expect(ServiceObservation.ActionResult(outcome).rawValue == label)
    }

    @Test func dnsAnswersMapToAClosedSet() {
        let cases: [(DNSAnswer, String)] = [
            (.records([.address([127, 0, 0, 2])], ttl: 1), "records"), (.nxdomain, "nxdomain"), (.noData, "nodata"),
            (.failure(.timeout), "timeout"), (.failure(.malformed), "malformed"), (.failure(.busy), "busy"),
            (.failure(.badName), "bad_name"), (.failure(.resolver("x")), "error"), (.failure(.serverFailure(rcode: 5)), "servfail"),
        ]
        for (answer, label) in cases { #expect(ServiceObservation.DNSResult(answer).rawValue == label) }
    }
}
