import Testing
@testable import SMTPGateCore

/// `smtpgate status`: the control lines round-trip, the text and JSON renderings, and hostile session text.
@Suite("Daemon status: control lines, text and JSON")
struct StatusReportTests {
    /// What the session machine keeps: the HELO as the log escapes it, plus bytes a bug could let through.
    static let hostileHelo = #"<script>x</script>\x09\x0d\x0a\x01\x22"# + "\t\r\n\u{01}é"

    static func status() -> DaemonStatus {
        DaemonStatus(
            version: "0.1.0", pid: 4242, started: 1_764_720_000, uptime: 3725.5, configFile: "/etc/smtpgate/smtpgate.conf",
            listeners: [.init(name: "in", kind: .smtp, address: "192.0.2.10:25", mode: "fixed", sessions: 1,
                              counts: ListenerCounts(ended: 40, refused: 3, transactions: 12, bytesIn: 90000, bytesOut: 7000)),
                        .init(name: "web", kind: .forward, address: "192.0.2.10:10001-10003", mode: "fixed", sessions: 1)],
            sessions: [
                SessionSnapshot(id: "ab-1", listener: "in", kind: .smtp, client: "198.51.100.7:40000", destination: "192.0.2.25:25",
                                state: "relay", ident: "bob", helo: hostileHelo, transactions: 2, bytesIn: 1200, bytesOut: 300, age: 75.25),
                SessionSnapshot(id: "ab-2", listener: "web", kind: .forward, client: "[2001:db8::7]:5000", destination: "-",
                                state: "lookup", bytesIn: 0, bytesOut: 0, age: 0.5),
            ],
            sessionsOmitted: 3, locks: 2, trackedClients: 17,
            counters: [.init(name: "smtpgate_sessions_total", value: 41), .init(name: "smtpgate_scans_total", value: 9),
                       .init(name: "smtpgate_locks_created_total", value: 1)])
    }

    @Test func requestsParse() throws {
        for r in [ControlRequest.status, .reload, .stop] {
            #expect(try ControlRequest(parsing: Array(r.line.utf8)) == r)
        }
        #expect(throws: ControlRequest.ParseError.self) { try ControlRequest(parsing: Array("status\textra".utf8)) }
        #expect(throws: ControlRequest.ParseError.self) { try ControlRequest(parsing: Array("STATUS".utf8)) }
    }

    /// Tabs and line ends in client text cannot split a control line; the rest comes back as sent.
    @Test func statusRoundTripsThroughControlLines() throws {
        let s = Self.status()
        let lines = s.replies.map(\.line)
        #expect(lines.allSatisfy { !$0.contains("\n") && !$0.contains("\r") })
        let parsed = lines.compactMap { ControlReply(parsing: Substring($0)) }
        #expect(parsed.count == lines.count)
        let back = try #require(DaemonStatus(replies: parsed))
        #expect(back.listeners[0].counts.bytesIn == 90000 && back.counters == s.counters)
        #expect(back.listeners == s.listeners && back.sessionsOmitted == 3 && back.locks == 2 && back.trackedClients == 17)
        #expect(back.sessions[0].helo == #"<script>x</script>\x09\x0d\x0a\x01\x22"# + "   \u{01}é", "tab, CR, LF became spaces")
        #expect(back.sessions[0].age == 75.25 && back.sessions[1].ident == nil && back.sessions[1].helo == nil)
        #expect(back.uptime == 3725.5 && back.pid == 4242, "milliseconds on the wire")
    }

    @Test func unreadableStatusLinesAreRefused() {
        for bad in ["daemon\tv\tx\t0\t0\tf\t0\t\t", "session\ta\tb\tsmtp\tc\td\te\t\t\t1\t2\t3", "listener\ta\tudp\tx\ty\t1\t0\t0\t0\t0\t0",
                    "listener\ta\tsmtp\tx\ty\t1", "listener\ta\tsmtp\tx\ty\t1\t0\t0\tmany\t0\t0", "total\tx", "total\tx\tnan",
                    "session\ta\tb\tsmtp\tc\td\te\t\t\tx\t2\t3\t4"] {
            #expect(ControlReply(parsing: Substring(bad)) == nil, "\(bad)")
        }
        #expect(DaemonStatus(replies: [.ok]) == nil)
        #expect(DaemonStatus(replies: [.daemon(Self.status()), .ok]) == nil, "only listeners and sessions follow")
    }

    @Test func textShowsTablesWithEscapedCells() {
        let t = StatusReport.text(Self.status())
        let lines = t.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        #expect(lines[0] == "smtpgate 0.1.0, pid 4242, up 01:02:05, config /etc/smtpgate/smtpgate.conf")
        #expect(lines[1] == "sessions 2, locks 2, rate-counted clients 17")
        #expect(lines[2] == "scans 9, locks made 1", "found counters the daemon has")
        #expect(lines.contains("in        smtp     192.0.2.10:25           fixed  1         40     3        12     90000  7000"))
        let row = lines.first { $0.hasPrefix("ab-1") } ?? ""
        #expect(row.hasSuffix(#"bob    <script>x</script>\x09\x0d\x0a\x01..."#), "HELO as the log has it, cut between escapes")
        #expect(row.contains(" relay ") && row.contains(" 01:15 ") == false && row.contains(" 00:01:15 "))
        #expect(lines.last(where: { !$0.isEmpty }) == "(3 more sessions not listed)")
        #expect(t.split(separator: "\n").allSatisfy { $0.utf8.allSatisfy { $0 >= 0x20 && $0 < 0x7f } }, "one printable line per row")
    }

    @Test func jsonUsesJSONEscapingAndNulls() {
        let j = StatusReport.json(Self.status())
        #expect(j.contains(#""helo":"<script>x</script>\\x09\\x0d\\x0a\\x01\\x22\t\r\n\u0001é""#))
        #expect(j.contains(#""ident":null,"helo":null"#))
        #expect(j.contains(#""locks":2,"tracked_clients":17"#) && j.contains(#""age":75.250"#))
        #expect(j.contains(#""counters":{"smtpgate_sessions_total":41,"smtpgate_scans_total":9,"smtpgate_locks_created_total":1}"#))
        #expect(j.contains(#""sessions":1,"ended":40,"refused":3,"transactions":12,"bytes_in":90000,"bytes_out":7000}"#))
        var off = Self.status()
        off.locks = nil
        off.trackedClients = nil
        #expect(StatusReport.json(off).contains(#""locks":null,"tracked_clients":null"#))
        #expect(StatusReport.text(off).split(separator: "\n")[1] == "sessions 2, abuse control off")
    }

    @Test func flatIsOneKeyValueLinePerThing() {
        let lines = StatusReport.flat(Self.status()).split(separator: "\n").map(String.init)
        #expect(lines.count == 8)
        #expect(lines[0] == "daemon version=0.1.0 pid=4242 started=1764720000 uptime=3725.500 config=/etc/smtpgate/smtpgate.conf "
                + "sessions=2 sessions_omitted=3 locks=2 tracked_clients=17")
        #expect(lines[1] == "counter name=smtpgate_sessions_total total=41")
        #expect(lines[4] == "listener name=in kind=smtp address=192.0.2.10:25 mode=fixed sessions=1 ended=40 refused=3 trans=12 "
                + "bytes_in=90000 bytes_out=7000")
        #expect(lines[5] == "listener name=web kind=forward address=192.0.2.10:10001-10003 mode=fixed sessions=1 ended=0 "
                + "refused=0 trans=0 bytes_in=0 bytes_out=0")
        #expect(lines[6].hasPrefix("session id=ab-1 listener=in kind=smtp state=relay age=75.250 client=198.51.100.7:40000 "
                                   + "dest=192.0.2.25:25 trans=2 bytes_in=1200 bytes_out=300 ident=bob helo=<script>x</script>"))
        #expect(lines[7].hasSuffix("ident=- helo=-"))
        #expect(lines.allSatisfy { $0.utf8.allSatisfy { $0 >= 0x20 && $0 < 0x7f } }, "hostile HELO bytes are escaped")
    }

    @Test func theStatefileHasTheAskedPartsInOrder() {
        let s = Self.status()
        #expect(StatusReport.statefile(s, [.slots, .human]) == StatusReport.human(s) + "\n" + StatusReport.slots(s))
        #expect(StatusReport.statefile(s, [.flat]) == StatusReport.flat(s))
        #expect(StatusReport.statefile(s, [.human, .flat, .slots]).components(separatedBy: "\n\n").count >= 3)
    }

    @Test(arguments: [("statefile_type flat", "statefile_type flat"), ("statefile_type SLOTS, human", "statefile_type human,slots"),
                      ("statefile_perm 0600", "statefile_perm 0600"), ("statefile_perm 644", "statefile_perm 0644"),
                      ("statefile_perm 0", "statefile_perm 0000"), ("statefile /var/run/smtp-gated/state", "statefile /var/run/smtp-gated/state")])
    func statefileOptionsReadAsSmtpGatedWritesThem(_ line: String, _ shown: String) throws {
        let c = try ConfigParser.parse("mode fixed\nfixed_server 127.0.0.1\n\(line)\n", file: "t.conf")
        #expect(ConfigParser.render(c).contains("\n\(shown)\n"))
    }

    @Test(arguments: ["statefile_type", "statefile_type human,", "statefile_type dump", "statefile_perm 01777", "statefile_perm 8",
                      "statefile_perm -1", "statefile_perm 0x1a4", "statefile state"])
    func badStatefileOptionsAreRefused(_ line: String) {
        #expect(throws: ConfigError.self) { try ConfigParser.parse("mode fixed\nfixed_server 127.0.0.1\n\(line)\n", file: "t.conf") }
    }

    @Test(arguments: [(0.04, "0.0s"), (59.96, "59.9s"), (60, "00:01:00"), (90061, "1d 01:01:01"), (-1, "-"), (.infinity, "-")])
    func durations(_ seconds: Double, _ shown: String) {
        #expect(StatusReport.duration(seconds) == shown)
    }
}
