import Testing
@testable import SMTPGateCore

@Suite("Configuration parser (smtp-gated syntax)")
struct ConfigParserTests {
    static let file = "t.conf"
    static let minimal = "mode fixed\nfixed_server 127.0.0.1\n"

    func parse(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) -> Config? {
        do {
            return try ConfigParser.parse(text, file: ConfigParserTests.file)
        } catch {
            Issue.record("unexpected error: \(error)", sourceLocation: sourceLocation)
            return nil
        }
    }

    func failure(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) -> ConfigError? {
        do {
            let c = try ConfigParser.parse(text, file: ConfigParserTests.file)
            Issue.record("parsed, expected an error: \(c)", sourceLocation: sourceLocation)
            return nil
        } catch {
            return error
        }
    }

    static let everyOption = """
        proxy_name gate.example
        bind_address 127.0.0.2
        port 2525
        outgoing_addr 10.0.0.5
        mode fixed
        fixed_server 192.0.2.10
        fixed_server_port 2526
        pidfile /run/smtpgate.pid
        connect_queue 5
        pipeline_size 7
        on_takeover_cmds 3
        max_connections 100
        max_recipients 300
        max_per_host 4
        timeout_connect 1.5
        timeout_idle 60
        timeout_direct 0.25
        timeout_session 5
        forbid_starttls yes
        log_helo no
        log_mail_from accepted
        log_rcpt_to rejected
        set_user nobody
        set_group nogroup
        shutdown_timeout 12

        """

    @Test func everyOptionParses() throws {
        let c = try #require(parse(ConfigParserTests.everyOption))
        #expect(c.proxyName == "gate.example")
        #expect(c.bindAddress == IPAddress("127.0.0.2"))
        #expect(c.port == 2525)
        #expect(c.outgoingAddr == IPAddress("10.0.0.5"))
        #expect(c.mode == .fixed)
        #expect(c.fixedServer == IPAddress("192.0.2.10"))
        #expect(c.fixedServerPort == 2526)
        #expect(c.pidfile == "/run/smtpgate.pid")
        #expect(c.connectQueue == 5)
        #expect(c.pipelineSize == 7)
        #expect(c.onTakeoverCmds == 3)
        #expect(c.maxConnections == 100)
        #expect(c.maxRecipients == 300)
        #expect(c.maxPerHost == 4)
        #expect(c.timeoutConnect == 1.5)
        #expect(c.timeoutIdle == 60)
        #expect(c.timeoutDirect == 0.25)
        #expect(c.timeoutSession == 5)
        #expect(c.forbidStartTLS == true)
        #expect(c.logHelo == false)
        #expect(c.logMailFrom == .accepted)
        #expect(c.logRcptTo == .rejected)
        #expect(c.setUser == "nobody")
        #expect(c.setGroup == "nogroup")
        #expect(c.shutdownTimeout == 12)
    }

    @Test func optionTableCoversTheContract() {
        #expect(ConfigParser.optionNames == [
            "proxy_name", "bind_address", "port", "outgoing_addr", "mode", "fixed_server", "fixed_server_port",
            "pidfile", "connect_queue", "pipeline_size", "on_takeover_cmds", "max_connections", "max_per_host",
            "max_recipients", "timeout_connect", "timeout_idle", "timeout_direct", "timeout_session", "forbid_starttls", "log_helo",
            "log_mail_from", "log_rcpt_to", "email_length", "remote_port", "remote_udp_retries", "remote_udp_secret",
            "remote_udp_key_file", "timeout_lookup", "size_limit", "proxy_protocol", "transparent_source", "set_user", "set_group",
            "spool_path", "spool_leave_on", "spool_memory", "antivirus_type", "antivirus_path", "antispam_type",
            "antispam_path", "scan_max_size", "spam_max_size", "spam_threshold", "spam_action", "timeout_scanner",
            "timeout_spam", "ignore_errors", "max_scans", "nat_header", "nat_header_type", "abuse", "action_script",
            "timeout_action", "max_actions",
            "lock_on", "lock_duration", "lock_exempt", "lock_path", "nat_sources", "lock_ipv6_prefix",
            "ratelimit_ipv6_prefix", "ratelimit_expiration", "ratelimit_path", "ratelimit_generation", "ratelimit_clients", "ratelimit_override",
            "max_per_ident", "max_load", "state_store", "control_path", "spool_header", "spool_perm", "spam_max_load", "priority", "limit_core_size", "limit_virt_size", "limit_data_size", "limit_fsize", "chroot_path",
            "dspam_storage", "log_facility", "log_level", "admin_listen", "admin_allow", "statefile", "statefile_type", "statefile_perm",
            "dnsbl", "dnsbl_threshold", "dns_server", "timeout_dns", "earlytalker", "earlytalker_wait", "auth_require", "auth_skip",
            "regex_reject_helo", "regex_reject_mail_from", "regex_reject_rcpt_to", "regex_enforce_helo",
            "regex_enforce_mail_from", "regex_enforce_rcpt_to",
            "client_restrictions", "helo_restrictions", "sender_restrictions", "recipient_restrictions", "data_restrictions",
            "mynetworks", "policy_mode", "spf", "spf_fixed_ip", "spf_log_only", "spf_received_header",
            "destination_restrictions",
            "msg_virus_found", "msg_spam_found", "msg_scanner_failed", "msg_virus_locked", "msg_lookup_failed",
            "msg_connect_failed", "msg_transaction_failed", "msg_session_timeout", "msg_sign_off", "msg_temp_unavail",
            "msg_pipeline_full", "msg_unimpl_command", "msg_max_reached", "msg_max_per_host", "msg_max_per_ident",
            "msg_system_load", "msg_auth_required", "msg_loop_avoidance", "msg_size_limit", "msg_dnsdb_reject",
            "msg_spf_reject", "msg_rate_reject", "msg_ratelimit_messages", "msg_ratelimit_rcptto",
            "msg_ratelimit_rcptto_rejects", "msg_ratelimit_mailfrom_rejects", "msg_ratelimit_dst", "msg_earlytalker",
            "msg_regex_helo", "msg_regex_mail_from", "msg_regex_rcpt_to",
            "ratelimit_connections", "ratelimit_messages", "ratelimit_recipients", "ratelimit_bytes",
            "ratelimit_mailfrom_rejects", "ratelimit_rcptto_rejects", "ratelimit_auth_rejects", "ratelimit_destinations",
            "allow", "deny", "syslog_name", "shutdown_timeout",
        ])
    }

    @Test func defaults() throws {
        let c = try #require(parse(ConfigParserTests.minimal))
        #expect(c.proxyName == "*")
        #expect(c.bindAddress.text == "0.0.0.0")
        #expect(c.port == 9199)
        #expect(c.outgoingAddr == nil)
        #expect(c.fixedServerPort == 25)
        #expect(c.pidfile == nil)
        #expect(c.connectQueue == 16)
        #expect(c.pipelineSize == 128)
        #expect(c.onTakeoverCmds == 10)
        #expect(c.maxConnections == 64)
        #expect(c.maxPerHost == 8)
        #expect(c.timeoutConnect == 30)
        #expect(c.timeoutIdle == 300)
        #expect(c.timeoutDirect == 300)
        #expect(c.timeoutSession == 20)
        #expect(c.forbidStartTLS == false)
        #expect(c.logHelo == true)
        #expect(c.logMailFrom == .all)
        #expect(c.logRcptTo == .all)
        #expect(c.setUser == nil)
        #expect(c.setGroup == nil)
        #expect(c.shutdownTimeout == 30)
        var expected = Config()
        expected.mode = .fixed
        expected.fixedServer = IPAddress("127.0.0.1")
        #expect(c == expected)
    }

    @Test func proxyNameStarMeansHostName() throws {
        let c = try #require(parse(ConfigParserTests.minimal))
        #expect(c.resolvedProxyName(hostName: "mail.example") == "mail.example")
        let d = try #require(parse(ConfigParserTests.minimal + "proxy_name gate\n"))
        #expect(d.resolvedProxyName(hostName: "mail.example") == "gate")
        let s = SessionSettings(config: d, hostName: "ignored")
        #expect(s.proxyName == "gate")
        #expect(s.pipelineSize == 128)
        #expect(s.onTakeoverCmds == 10)
        #expect(s.forbidStartTLS == false)
    }

    // MARK: errors

    @Test func unknownOption() throws {
        let e = try #require(failure("mode fixed\nfixed_server 127.0.0.1\nfoo bar\n"))
        #expect(e.description == "t.conf:3: unknown option 'foo'")
        #expect(e.line == 3)
        #expect(e.file == "t.conf")
    }

    @Test func unknownOptionNameIsEscaped() throws {
        let e = try #require(failure("mode fixed\nfo%o\u{1}x bar\n"))
        #expect(e.description == "t.conf:2: unknown option 'fo%o\\x01x'")
    }

    @Test func duplicateOption() throws {
        let e = try #require(failure("mode fixed\nport 25\nfixed_server 127.0.0.1\nport 26\n"))
        #expect(e.description == "t.conf:4: option 'port' is already set on line 2")
    }

    @Test func optionWithoutValue() throws {
        let e = try #require(failure("mode fixed\nfixed_server 127.0.0.1\nport\n"))
        #expect(e.line == 3)
        #expect(e.description.hasPrefix("t.conf:3: option 'port'"))
    }

    @Test(arguments: ["0", "65536", "99999", "-1", "abc", "25x", "2 5", "1.5"])
    func badPort(value: String) throws {
        let e = try #require(failure(ConfigParserTests.minimal + "port \(value)\n"))
        #expect(e.line == 3)
        #expect(e.description.hasPrefix("t.conf:3: option 'port': "), "\(e)")
    }

    @Test(arguments: ["1", "65535", "25"])
    func goodPort(value: String) throws {
        let c = try #require(parse(ConfigParserTests.minimal + "fixed_server_port \(value)\n"))
        #expect(c.fixedServerPort == Int(value))
    }

    @Test(arguments: ["soon", "0", "-1", "inf", "nan", "", "1e9", "5s"])
    func badSeconds(value: String) throws {
        let e = try #require(failure("timeout_idle \(value)\n" + ConfigParserTests.minimal))
        #expect(e.line == 1)
        #expect(e.description.hasPrefix("t.conf:1: option 'timeout_idle'"), "\(e)")
    }

    @Test(arguments: [("0.5", 0.5), ("1", 1.0), ("2.25", 2.25), ("604800", 604_800.0), ("1e2", 100.0)])
    func goodSeconds(value: String, expected: Double) throws {
        let c = try #require(parse(ConfigParserTests.minimal + "timeout_session \(value)\n"))
        #expect(c.timeoutSession == expected)
    }

    @Test(arguments: [("1", true), ("yes", true), ("on", true), ("true", true), ("YES", true), ("On", true),
                      ("0", false), ("no", false), ("off", false), ("false", false), ("FALSE", false)])
    func goodBool(value: String, expected: Bool) throws {
        let c = try #require(parse(ConfigParserTests.minimal + "forbid_starttls \(value)\n"))
        #expect(c.forbidStartTLS == expected)
    }

    @Test(arguments: ["maybe", "2", "y", "enabled"])
    func badBool(value: String) throws {
        let e = try #require(failure(ConfigParserTests.minimal + "log_helo \(value)\n"))
        #expect(e.description.hasPrefix("t.conf:3: option 'log_helo': "), "\(e)")
    }

    @Test(arguments: ["netfilter", "tproxy", "getsockname", "remote-udp"])
    func lookupModesNeedNoFixedServer(mode: String) throws {
        let c = try #require(parse("mode \(mode)\n"))
        #expect(c.mode?.rawValue == mode)
        #expect(c.mode?.isFixed == false)
    }

    @Test(arguments: ["fixed", "fixed+xclient"])
    func fixedModesNeedFixedServer(mode: String) throws {
        let e = try #require(failure("# x\nmode \(mode)\n"))
        #expect(e.description == "t.conf:2: mode \(mode) needs fixed_server")
        #expect(try #require(parse("mode \(mode)\nfixed_server ::1\n")).mode?.isFixed == true)
    }

    @Test func remoteUDPOptionsAndDefaults() throws {
        let d = try #require(parse("mode remote-udp\n"))
        #expect((d.remotePort, d.remoteUDPRetries, d.remoteUDPSecret, d.timeoutLookup) == (114, 3, 0, 10))
        #expect(d.remoteUDPKeyFile == nil)
        let c = try #require(parse("""
            mode remote-udp
            remote_port 1114
            remote_udp_retries 5
            remote_udp_secret 4294967295
            remote_udp_key_file /etc/smtpgate/helper.key
            timeout_lookup 0.5

            """))
        #expect((c.remotePort, c.remoteUDPRetries, c.remoteUDPSecret, c.timeoutLookup) == (1114, 5, UInt32.max, 0.5))
        #expect(c.remoteUDPKeyFile == "/etc/smtpgate/helper.key")
    }

    @Test(arguments: [
        ("remote_udp_secret 4294967296", "option 'remote_udp_secret'"),
        ("remote_udp_retries 0", "expected a whole number from 1 to 20, got '0'"),
        ("remote_udp_retries 21", "option 'remote_udp_retries'"),
        ("remote_port 0", "option 'remote_port'"),
        ("remote_udp_key_file relative/key", "expected an absolute path"),
        ("timeout_lookup 0", "option 'timeout_lookup'"),
    ])
    func badRemoteUDPValues(line: String, message: String) throws {
        let e = try #require(failure("mode remote-udp\n\(line)\n"))
        #expect(e.line == 2)
        #expect(e.description.contains(message), "\(e)")
    }

    @Test(arguments: [
        ("mode netfilter\nproxy_protocol yes\n", 2, "proxy_protocol needs mode fixed"),
        ("mode fixed+xclient\nfixed_server 10.0.0.1\nproxy_protocol yes\n", 3, "proxy_protocol needs mode fixed"),
        ("mode netfilter\ntransparent_source yes\n", 2, "transparent_source needs mode tproxy"),
        ("mode tproxy\ntransparent_source yes\noutgoing_addr 10.0.0.1\n", 2, "transparent_source and outgoing_addr exclude each other"),
        ("mode tproxy\ntransparent_source yes\nset_user nobody\n", 2, "transparent_source needs CAP_NET_ADMIN on every connection, which set_user gives up"),
    ])
    func modeSpecificOptionsAreChecked(text: String, line: Int, message: String) throws {
        let e = try #require(failure(text))
        #expect(e.line == line)
        #expect(e.description.contains(message), "\(e)")
    }

    @Test func modeSpecificOptionsWhereTheyBelong() throws {
        #expect(try #require(parse("mode fixed\nfixed_server 10.0.0.1\nproxy_protocol yes\n")).proxyProtocol)
        #expect(try #require(parse("mode tproxy\ntransparent_source yes\n")).transparentSource)
    }

    @Test func unknownMode() throws {
        let e = try #require(failure("fixed_server 127.0.0.1\nmode bogus\n"))
        #expect(e.line == 2)
        #expect(e.description.contains("unknown mode 'bogus'"))
    }

    @Test func modeIsCaseInsensitive() throws {
        let c = try #require(parse("mode FIXED\nfixed_server 127.0.0.1\n"))
        #expect(c.mode == .fixed)
    }

    @Test func missingFixedServer() throws {
        let e = try #require(failure("port 25\nmode fixed\n"))
        #expect(e.description == "t.conf:2: mode fixed needs fixed_server")
    }

    @Test func missingMode() throws {
        let e = try #require(failure("fixed_server 127.0.0.1\n"))
        #expect(e.line == nil)
        #expect(e.description.hasPrefix("t.conf: option 'mode' is not set"))
    }

    @Test(arguments: ["not-an-ip", "1.2.3", "256.0.0.1", "::g", "example.com", "[::1", "1.2.3.4:25"])
    func badAddress(value: String) throws {
        let e = try #require(failure("mode fixed\nfixed_server \(value)\n"))
        #expect(e.description.hasPrefix("t.conf:2: option 'fixed_server': "), "\(e)")
    }

    @Test func ipv6Addresses() throws {
        let c = try #require(parse("mode fixed\nfixed_server 2001:DB8:0:0::1\nbind_address ::\noutgoing_addr [::1]\n"))
        #expect(c.fixedServer?.text == "2001:db8::1")
        #expect(c.fixedServer?.family == .v6)
        #expect(c.bindAddress.text == "::")
        #expect(c.outgoingAddr?.text == "::1")
        #expect(c.fixedServer?.withPort(25) == "[2001:db8::1]:25")
        #expect(IPAddress("192.0.2.1")?.withPort(25) == "192.0.2.1:25")
        let d = try #require(parse("mode fixed\nfixed_server ::1\n"))
        #expect(d.fixedServer?.text == "::1")
    }

    @Test func outgoingAddressFamilyMustMatchServer() throws {
        let e = try #require(failure("mode fixed\noutgoing_addr ::1\nfixed_server 127.0.0.1\n"))
        #expect(e.line == 2)
        #expect(e.description.contains("different address families"))
    }

    @Test func pipelineSizeMustBePositive() throws {
        let e = try #require(failure(ConfigParserTests.minimal + "pipeline_size 0\n"))
        #expect(e.description.hasPrefix("t.conf:3: option 'pipeline_size': "))
        let c = try #require(parse(ConfigParserTests.minimal + "on_takeover_cmds 0\nmax_connections 0\nmax_per_host 0\n"))
        #expect(c.onTakeoverCmds == 0)
        #expect(c.maxConnections == 0)
        #expect(c.maxPerHost == 0)
    }

    @Test(arguments: ["-1", "x", "1.5", "99999999999"])
    func badUnsignedNumber(value: String) throws {
        let e = try #require(failure(ConfigParserTests.minimal + "max_connections \(value)\n"))
        #expect(e.description.hasPrefix("t.conf:3: option 'max_connections': "), "\(e)")
    }

    @Test func pidfileMustBeAbsolute() throws {
        let e = try #require(failure(ConfigParserTests.minimal + "pidfile run/x.pid\n"))
        #expect(e.description.hasPrefix("t.conf:3: option 'pidfile': "))
    }

    @Test func nulByteRejected() throws {
        let e = try #require(failure(ConfigParserTests.minimal + "proxy_name a\u{0}b\n"))
        #expect(e.line == 3)
    }

    @Test func overlongLineRejected() throws {
        let e = try #require(failure(ConfigParserTests.minimal + "proxy_name " + repeated("a", 9000) + "\n"))
        #expect(e.line == 3)
    }

    @Test func oversizedFileRejected() throws {
        let e = try #require(failure(repeated("# filler line of comment text\n", 40_000)))
        #expect(e.line == nil)
    }

    // MARK: layout

    @Test func commentsBlankLinesAndWhitespace() throws {
        let text = "# comment\n; another comment\n\n   # indented comment\n\t; tab comment\n"
            + "  mode   fixed  \n\tfixed_server\t127.0.0.1\t\nport\t 2525\n   \n"
        let c = try #require(parse(text))
        #expect(c.port == 2525)
        #expect(c.fixedServer?.text == "127.0.0.1")
    }

    @Test func lineNumbersCountCommentsAndBlankLines() throws {
        let e = try #require(failure("# one\n\n; three\nmode fixed\nfixed_server 127.0.0.1\n\nbogus 1\n"))
        #expect(e.line == 7)
    }

    @Test func crlfLineEndings() throws {
        let text = "# comment\r\nmode fixed\r\nfixed_server 127.0.0.1\r\nport 2525\r\n\r\n; done\r\n"
        let c = try #require(parse(text))
        #expect(c.port == 2525)
        #expect(c.mode == .fixed)
        #expect(c.fixedServer?.text == "127.0.0.1")
    }

    @Test func crlfLineEndingsErrorLine() throws {
        let e = try #require(failure("mode fixed\r\nfixed_server 127.0.0.1\r\nfoo bar\r\n"))
        #expect(e.description == "t.conf:3: unknown option 'foo'")
    }

    @Test func noTrailingNewline() throws {
        let c = try #require(parse("mode fixed\nfixed_server 127.0.0.1\nport 2600"))
        #expect(c.port == 2600)
    }

    // MARK: log_mail_from / log_rcpt_to

    @Test(arguments: [
        ("accepted", 1), ("rejected", 2), ("accepted,rejected", 3), ("rejected,accepted", 3),
        ("accepted, rejected", 3), ("ACCEPTED", 1), ("none", 0), ("no", 0), ("off", 0),
        ("0", 0), ("1", 1), ("2", 2), ("3", 3),
    ])
    func addressLoggingForms(value: String, bits: Int) throws {
        let c = try #require(parse(ConfigParserTests.minimal + "log_mail_from \(value)\nlog_rcpt_to \(value)\n"))
        #expect(c.logMailFrom.rawValue == bits)
        #expect(c.logRcptTo.rawValue == bits)
    }

    @Test(arguments: ["base64", "accepted,base64", "4", "5", "7"])
    func base64FlagRejected(value: String) throws {
        let e = try #require(failure(ConfigParserTests.minimal + "log_mail_from \(value)\n"))
        #expect(e.description.hasPrefix("t.conf:3: option 'log_mail_from': "))
        #expect(e.description.contains("base64"), "\(e)")
    }

    @Test(arguments: ["8", "-1", "everything", "accepted;rejected"])
    func badAddressLogging(value: String) throws {
        let e = try #require(failure(ConfigParserTests.minimal + "log_rcpt_to \(value)\n"))
        #expect(e.description.hasPrefix("t.conf:3: option 'log_rcpt_to': "), "\(e)")
    }

    // MARK: render

    @Test func renderRoundTripsEveryOption() throws {
        let c = try #require(parse(ConfigParserTests.everyOption))
        let text = ConfigParser.render(c)
        let again = try #require(parse(text))
        #expect(again == c)
        #expect(ConfigParser.render(again) == text)
    }

    @Test func renderRoundTripsDefaults() throws {
        let c = try #require(parse(ConfigParserTests.minimal))
        let text = ConfigParser.render(c)
        #expect(try #require(parse(text)) == c)
    }

    @Test func renderRoundTripsIPv6AndOddValues() throws {
        let c = try #require(parse("mode fixed\nfixed_server ::1\nbind_address ::\noutgoing_addr fe80::1\n"
            + "timeout_idle 0.1\ntimeout_connect 1e-3\nlog_mail_from none\nlog_rcpt_to 2\nproxy_name *\n"))
        let text = ConfigParser.render(c)
        #expect(try #require(parse(text)) == c)
    }

    @Test func renderListsEveryOptionOncePerLineInTableOrder() throws {
        let c = try #require(parse(ConfigParserTests.minimal))
        let lines = ConfigParser.render(c).split(separator: "\n").map(String.init)
        #expect(lines.count == ConfigParser.optionNames.count)
        for (line, name) in zip(lines, ConfigParser.optionNames) {
            #expect(line.hasPrefix("\(name) ") || line == "# \(name) (not set)", "\(line)")
        }
        #expect(lines.contains("port 9199"))
        #expect(lines.contains("mode fixed"))
        #expect(lines.contains("fixed_server 127.0.0.1"))
        #expect(lines.contains("forbid_starttls no"))
        #expect(lines.contains("log_mail_from accepted,rejected"))
        #expect(lines.contains("timeout_idle 300"))
        #expect(lines.contains("shutdown_timeout 30"))
        #expect(lines.contains("proxy_name *"))
    }

    @Test func renderedValues() throws {
        let c = try #require(parse(ConfigParserTests.everyOption))
        let lines = Set(ConfigParser.render(c).split(separator: "\n").map(String.init))
        for expected in ["timeout_direct 0.25", "timeout_connect 1.5", "timeout_idle 60", "forbid_starttls yes",
                         "log_helo no", "log_mail_from accepted", "log_rcpt_to rejected", "pidfile /run/smtpgate.pid",
                         "outgoing_addr 10.0.0.5", "set_user nobody"] {
            #expect(lines.contains(expected), "\(expected)")
        }
    }
}

@Suite("Configuration files as bytes")
struct ConfigBytesTests {
    @Test func invalidUTF8NamesItsLine() {
        let bytes = Array("mode fixed\nfixed_server 127.0.0.1\n# caf".utf8) + [0xe9] + Array("\nport 25\n".utf8)
        #expect(throws: ConfigError(file: "u.conf", line: 3, message: "line is not valid UTF-8 text")) {
            try ConfigParser.parse(bytes: bytes, file: "u.conf")
        }
    }

    @Test func aTruncatedSequenceOnTheLastLineIsNamedToo() {
        let bytes = Array("mode fixed\n".utf8) + [0xe2, 0x82]
        #expect(throws: ConfigError(file: "u.conf", line: 2, message: "line is not valid UTF-8 text")) {
            try ConfigParser.parse(bytes: bytes, file: "u.conf")
        }
    }

    @Test func validUTF8ParsesAsText() throws {
        let c = try ConfigParser.parse(bytes: Array("# Grüße\nmode fixed\nfixed_server 127.0.0.1\n".utf8), file: "u.conf")
        #expect(c.mode == .fixed)
    }
}
