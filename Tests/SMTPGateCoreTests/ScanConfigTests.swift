import Testing
@testable import SMTPGateCore

@Suite("Scanner endpoints: an absolute unix socket path or a literal ADDRESS:PORT")
struct ScannerEndpointTests {
    static let longest = "/" + repeated("s", 106)

    @Test(arguments: [
        ("/var/run/clamav/clamd.ctl", ScannerEndpoint.unix("/var/run/clamav/clamd.ctl"), "/var/run/clamav/clamd.ctl"),
        (longest, .unix(longest), longest),
        ("127.0.0.1:3310", .tcp(IPAddress("127.0.0.1")!, 3310), "127.0.0.1:3310"),
        ("192.0.2.1:1", .tcp(IPAddress("192.0.2.1")!, 1), "192.0.2.1:1"),
        ("[::1]:783", .tcp(IPAddress("::1")!, 783), "[::1]:783"),
        ("[2001:DB8:0::1]:65535", .tcp(IPAddress("2001:db8::1")!, 65535), "[2001:db8::1]:65535"),
    ])
    func good(text: String, endpoint: ScannerEndpoint, shown: String) {
        #expect(ScannerEndpoint(text) == endpoint)
        #expect(ScannerEndpoint(text)?.description == shown)
        #expect(ScannerEndpoint(shown) == endpoint, "the shown form reads back")
    }

    @Test(arguments: [
        "", "clamd.ctl", "run/clamd.ctl", "./clamd.ctl", longest + "s", "/a\u{0}b",
        "127.0.0.1", "127.0.0.1:", "127.0.0.1:0", "127.0.0.1:65536", "127.0.0.1:-1", "127.0.0.1:3310x",
        "127.0.0.1: 3310", "127.0.0.1:99999999999999999999", "127.0.0.1:0x10", ":3310",
        "localhost:3310", "clamav.example.net:3310", "[localhost]:3310", "127.0.0.1.nip.io:25",
        "[::1]", "[::1]:", "[::1]:0", "[::1]:65536", "::1", "[::1:783", "::1]:783", "256.0.0.1:25",
    ])
    func bad(text: String) {
        #expect(ScannerEndpoint(text) == nil, "\(text.debugDescription)")
    }

    /// Without brackets the port cannot be told from the address: `2001:db8::1:3310` is an IPv6 address
    /// itself, so reading it as `[2001:db8::1]:3310` would connect somewhere the administrator did not write.
    @Test(arguments: ["::1:783", "2001:db8::1:3310", "fe80::1:25"])
    func unbracketedIPv6WithPortIsRejected(text: String) {
        #expect(ScannerEndpoint(text) == nil, "\(text) is ambiguous")
    }
}

@Suite("Configuration: spool, scanner, NAT header and action script options")
struct ScanConfigTests {
    static let file = "t.conf"
    static let minimal = "mode fixed\nfixed_server 127.0.0.1\n"

    func parse(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) -> Config? {
        do {
            return try ConfigParser.parse(text, file: ScanConfigTests.file)
        } catch {
            Issue.record("unexpected error: \(error)", sourceLocation: sourceLocation)
            return nil
        }
    }

    func failure(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) -> ConfigError? {
        do {
            let c = try ConfigParser.parse(text, file: ScanConfigTests.file)
            Issue.record("parsed, expected an error: \(c)", sourceLocation: sourceLocation)
            return nil
        } catch {
            return error
        }
    }

    static let names = [
        "spool_path", "spool_leave_on", "spool_memory", "antivirus_type", "antivirus_path", "antispam_type",
        "antispam_path", "scan_max_size", "spam_max_size", "spam_threshold", "spam_action", "timeout_scanner",
        "timeout_spam", "ignore_errors", "max_scans", "nat_header", "nat_header_type", "abuse", "action_script",
        "timeout_action", "max_actions",
    ]

    static let everyOption = minimal + """
        spool_path /var/spool/gate
        spool_leave_on error,virus
        spool_memory 1048576
        antivirus_type clamd
        antivirus_path 127.0.0.1:3310
        antispam_type spamassassin
        antispam_path [::1]:783
        scan_max_size 20000000
        spam_max_size 300000
        spam_threshold 5.5
        spam_action deliver
        timeout_scanner 12.5
        timeout_spam 40
        ignore_errors yes
        max_scans 8
        nat_header X-Gate-Client
        nat_header_type generic
        abuse mail abuse@example.net
        action_script /usr/local/bin/on-event
        timeout_action 5
        max_actions 2

        """

    @Test func everyOptionIsKnownInTableOrder() {
        let all = ConfigParser.optionNames
        let positions = ScanConfigTests.names.compactMap { all.firstIndex(of: $0) }
        #expect(positions.count == ScanConfigTests.names.count, "every scanning option is in the table")
        #expect(positions == positions.sorted(), "and listed in this order")
    }

    @Test func everyOptionParses() throws {
        let c = try #require(parse(ScanConfigTests.everyOption))
        #expect(c.spoolPath == "/var/spool/gate")
        #expect(c.spoolLeaveOn == [.error, .virus])
        #expect(c.spoolMemory == 1_048_576)
        #expect(c.antivirusType == .clamd)
        #expect(c.antivirusPath == "127.0.0.1:3310")
        #expect(c.antispamType == .spamassassin)
        #expect(c.antispamPath == "[::1]:783")
        #expect(c.scanMaxSize == 20_000_000)
        #expect(c.spamMaxSize == 300_000)
        #expect(c.spamThreshold == 5.5)
        #expect(c.spamAction == .deliver)
        #expect(c.timeoutScanner == 12.5)
        #expect(c.timeoutSpam == 40)
        #expect(c.ignoreErrors == true)
        #expect(c.maxScans == 8)
        #expect(c.natHeader == "X-Gate-Client")
        #expect(c.natHeaderType == .generic)
        #expect(c.abuse == "mail abuse@example.net")
        #expect(c.actionScript == "/usr/local/bin/on-event")
        #expect(c.timeoutAction == 5)
        #expect(c.maxActions == 2)
        #expect(c.scans)
    }

    @Test func defaults() throws {
        let c = try #require(parse(ScanConfigTests.minimal))
        #expect(c.spoolPath == "/var/spool/smtpgate")
        #expect(c.spoolLeaveOn == .error)
        #expect(c.spoolMemory == 256 * 1024)
        #expect(c.antivirusType == .none)
        #expect(c.antivirusPath == "/var/run/clamav/clamd.ctl")
        #expect(c.antispamType == .none)
        #expect(c.antispamPath == "/var/run/spamd/spamd_socket")
        #expect(c.scanMaxSize == 10_000_000)
        #expect(c.spamMaxSize == 500_000)
        #expect(c.spamThreshold == 7)
        #expect(c.spamAction == .reject)
        #expect(c.timeoutScanner == 30)
        #expect(c.timeoutSpam == 30)
        #expect(c.ignoreErrors == false)
        #expect(c.maxScans == 32)
        #expect(c.natHeader == "X-Nat-Received")
        #expect(c.natHeaderType == .none)
        #expect(c.abuse == nil)
        #expect(c.actionScript == nil)
        #expect(c.timeoutAction == 30)
        #expect(c.maxActions == 4)
        #expect(!c.scans, "no scanner by default: the dot is not held")
    }

    @Test(arguments: [
        ("antivirus_type CLAMD", "antivirus_type clamd"), ("antispam_type SpamAssassin", "antispam_type spamassassin"),
        ("spam_action Deliver", "spam_action deliver"), ("nat_header_type IP-Only", "nat_header_type ip-only"),
        ("nat_header_type none", "nat_header_type none"),
        ("antivirus_type off", "antivirus_type none"), ("antispam_type OFF", "antispam_type none"),
        ("spool_leave_on never", "spool_leave_on never"), ("spool_leave_on none", "spool_leave_on never"),
        ("spool_leave_on always", "spool_leave_on always"), ("spool_leave_on VIRUS,Spam", "spool_leave_on spam,virus"),
        ("spool_leave_on virus , error", "spool_leave_on error,virus"), ("spool_leave_on never,error", "spool_leave_on error"),
        ("spool_leave_on error,spam,virus,always", "spool_leave_on error,spam,virus,always"),
        ("spool_memory 0", "spool_memory 0"), ("spool_memory 67108864", "spool_memory 67108864"),
        ("scan_max_size 0", "scan_max_size 0"), ("spam_threshold -2", "spam_threshold -2.0"),
        ("spam_threshold 999.5", "spam_threshold 999.5"), ("spam_threshold 0", "spam_threshold 0.0"),
        ("timeout_scanner 0.25", "timeout_scanner 0.25"), ("timeout_spam 604800", "timeout_spam 604800"),
        ("ignore_errors off", "ignore_errors no"), ("max_scans 1", "max_scans 1"), ("max_scans 10000", "max_scans 10000"),
        ("max_actions 1000", "max_actions 1000"),
        ("antivirus_path /run/clamd.sock", "antivirus_path /run/clamd.sock"),
        ("antispam_path 192.0.2.5:783", "antispam_path 192.0.2.5:783"),
        ("nat_header X-" + repeated("n", 62), "nat_header X-" + repeated("n", 62)),
        ("abuse " + repeated("a", 200), "abuse " + repeated("a", 200)),
        ("abuse   spaced  out  ", "abuse spaced  out"),
    ])
    func valueIsReadAndShown(line: String, shown: String) throws {
        let c = try #require(parse(ScanConfigTests.minimal + line + "\n"))
        let lines = ConfigParser.render(c).split(separator: "\n").map(String.init)
        #expect(lines.contains(shown), "\(line)")
        #expect(try #require(parse(ConfigParser.render(c))) == c, "check-config output reads back: \(line)")
    }

    @Test(arguments: [
        ("spool_path spool", "expected an absolute path, got 'spool'"),
        ("spool_leave_on sometimes", "expected error, spam, virus, always or never (a comma list), got 'sometimes'"),
        ("spool_leave_on error;spam", "expected error, spam, virus, always or never (a comma list), got 'error;spam'"),
        ("spool_memory 67108865", "expected a whole number from 0 to 67108864, got '67108865'"),
        ("spool_memory -1", "expected a whole number from 0 to 67108864, got '-1'"),
        ("spool_memory 1k", "expected a whole number from 0 to 67108864, got '1k'"),
        ("antivirus_type clamav", "expected one of none, clamd, got 'clamav'"),
        ("antispam_type spamd", "expected one of none, spamassassin, got 'spamd'"),
        ("antivirus_path localhost:3310",
         "expected an absolute unix socket path or ADDRESS:PORT with a literal address, got 'localhost:3310'"),
        ("antispam_path 127.0.0.1",
         "expected an absolute unix socket path or ADDRESS:PORT with a literal address, got '127.0.0.1'"),
        ("antispam_path 127.0.0.1:0",
         "expected an absolute unix socket path or ADDRESS:PORT with a literal address, got '127.0.0.1:0'"),
        ("antivirus_path /" + repeated("p", 107),
         "expected an absolute unix socket path or ADDRESS:PORT with a literal address, got '/" + repeated("p", 107) + "'"),
        ("scan_max_size 1e6", "expected a whole number from 0 to \(Int.max), got '1e6'"),
        ("spam_max_size -5", "expected a whole number from 0 to \(Int.max), got '-5'"),
        ("spam_threshold high", "expected a spam score, got 'high'"),
        ("spam_threshold nan", "expected a spam score, got 'nan'"),
        ("spam_threshold inf", "expected a spam score, got 'inf'"),
        ("spam_threshold 1000", "expected a spam score, got '1000'"),
        ("spam_threshold -1000", "expected a spam score, got '-1000'"),
        ("spam_action drop", "expected one of reject, deliver, got 'drop'"),
        ("timeout_scanner 0", "expected seconds greater than 0 (at most one week), got '0'"),
        ("timeout_spam -1", "expected seconds greater than 0 (at most one week), got '-1'"),
        ("timeout_action 8d", "expected seconds greater than 0 (at most one week), got '8d'"),
        ("ignore_errors sometimes", "expected yes or no (also 1/0, on/off, true/false), got 'sometimes'"),
        ("max_scans 0", "expected a whole number from 1 to 10000, got '0'"),
        ("max_scans 10001", "expected a whole number from 1 to 10000, got '10001'"),
        ("max_actions 0", "expected a whole number from 1 to 1000, got '0'"),
        ("max_actions 1001", "expected a whole number from 1 to 1000, got '1001'"),
        ("nat_header X-Nat:", "expected a header field name (printable ASCII without ':' or spaces, at most 64), got 'X-Nat:'"),
        ("nat_header X Nat", "expected a header field name (printable ASCII without ':' or spaces, at most 64), got 'X Nat'"),
        ("nat_header X-" + repeated("n", 63),
         "expected a header field name (printable ASCII without ':' or spaces, at most 64), got 'X-" + repeated("n", 63) + "'"),
        ("nat_header_type full", "expected one of none, generic, ip-only, got 'full'"),
        ("abuse tab\there", "expected printable ASCII text of at most 200 characters, got 'tab\\x09here'"),
        ("abuse caf\u{e9}", "expected printable ASCII text of at most 200 characters, got 'caf\u{e9}'"),
        ("abuse " + repeated("a", 201),
         "expected printable ASCII text of at most 200 characters, got '" + repeated("a", 201) + "'"),
        ("action_script on-event.sh", "expected an absolute path, got 'on-event.sh'"),
    ])
    func badValue(line: String, message: String) throws {
        let name = String(line.prefix { $0 != " " })
        let e = try #require(failure(ScanConfigTests.minimal + "# scanning\n" + line + "\n"))
        #expect(e.description == "t.conf:4: option '\(name)': \(message)")
        #expect(e.line == 4)
    }

    @Test func scanningOptionsNeedAValueAndAreSetOnce() throws {
        for name in ScanConfigTests.names {
            let e = try #require(failure(ScanConfigTests.minimal + name + "\n"))
            #expect(e.description == "t.conf:3: option '\(name)' needs a value")
        }
        let d = try #require(failure(ScanConfigTests.minimal + "max_scans 2\nspam_threshold 5\nmax_scans 3\n"))
        #expect(d.description == "t.conf:5: option 'max_scans' is already set on line 3")
    }

    @Test func hostileAbuseTextCannotReachTheHeader() throws {
        for value in ["a\u{0}b", "x\u{7f}", "\u{1b}[31m"] {
            let e = try #require(failure(ScanConfigTests.minimal + "abuse " + value + "\n"))
            #expect(e.line == 3, "\(value.debugDescription)")
        }
    }

    // MARK: check-config

    @Test func checkConfigShowsEveryScanningOption() throws {
        let c = try #require(parse(ScanConfigTests.everyOption))
        let text = ConfigParser.render(c)
        let lines = Set(text.split(separator: "\n").map(String.init))
        for expected in [
            "spool_path /var/spool/gate", "spool_leave_on error,virus", "spool_memory 1048576", "antivirus_type clamd",
            "antivirus_path 127.0.0.1:3310", "antispam_type spamassassin", "antispam_path [::1]:783",
            "scan_max_size 20000000", "spam_max_size 300000", "spam_threshold 5.5", "spam_action deliver",
            "timeout_scanner 12.5", "timeout_spam 40", "ignore_errors yes", "max_scans 8", "nat_header X-Gate-Client",
            "nat_header_type generic", "abuse mail abuse@example.net", "action_script /usr/local/bin/on-event",
            "timeout_action 5", "max_actions 2",
        ] {
            #expect(lines.contains(expected), "\(expected)")
        }
        let again = try #require(parse(text))
        #expect(again == c)
        #expect(ConfigParser.render(again) == text)
    }

    @Test func checkConfigShowsTheDefaults() throws {
        let c = try #require(parse(ScanConfigTests.minimal))
        let text = ConfigParser.render(c)
        let lines = text.split(separator: "\n").map(String.init)
        let scanning = lines.filter { line in
            ScanConfigTests.names.contains { line.hasPrefix($0 + " ") || line == "# \($0) (not set)" }
        }
        #expect(scanning == [
            "spool_path /var/spool/smtpgate", "spool_leave_on error", "spool_memory 262144", "antivirus_type none",
            "antivirus_path /var/run/clamav/clamd.ctl", "antispam_type none", "antispam_path /var/run/spamd/spamd_socket",
            "scan_max_size 10000000", "spam_max_size 500000", "spam_threshold 7.0", "spam_action reject",
            "timeout_scanner 30", "timeout_spam 30", "ignore_errors no", "max_scans 32", "nat_header X-Nat-Received",
            "nat_header_type none", "# abuse (not set)", "# action_script (not set)", "timeout_action 30", "max_actions 4",
        ])
        #expect(try #require(parse(text)) == c)
    }
}
