import Testing
@testable import SMTPGateCore

@Suite("Configuration sections: [listener NAME] and [forward NAME]")
struct ConfigSectionsTests {
    static let file = "s.conf"

    func parse(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) -> ConfigFile? {
        do {
            return try ConfigParser.parseFile(text, file: Self.file)
        } catch {
            Issue.record("unexpected error: \(error)", sourceLocation: sourceLocation)
            return nil
        }
    }

    func failure(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) -> ConfigError? {
        do {
            let f = try ConfigParser.parseFile(text, file: Self.file)
            Issue.record("parsed, expected an error: \(f.listeners.map(\.name))", sourceLocation: sourceLocation)
            return nil
        } catch {
            return error
        }
    }

    static let inboundOutbound = """
        # global: defaults for both
        pidfile /run/smtpgate.pid
        mode fixed
        fixed_server 127.0.0.1
        max_per_host 8
        timeout_idle 120

        [listener inbound]
        port 2525
        fixed_server_port 10025
        recipient_restrictions check_recipient_access texthash:/etc/smtpgate/recipient_access, permit
        [listener outbound]
        port 2587
        fixed_server_port 10587
        max_per_host 50
        client_restrictions permit_mynetworks, reject
        """

    @Test func fileWithoutSectionsIsOneListenerNamedMain() throws {
        let f = try #require(parse("mode fixed\nfixed_server 127.0.0.1\nport 2525\n"))
        #expect(!f.sectioned)
        #expect(f.listeners.map(\.name) == ["main"])
        #expect(f.listeners[0].config == f.global)
        #expect(f.listeners[0].config.port == 2525)
        #expect(f.forwards.isEmpty)
        #expect(try ConfigParser.parse("mode fixed\nfixed_server 127.0.0.1\nport 2525\n", file: Self.file) == f.global)
    }

    @Test func sectionsStartFromTheGlobalOptionsAndOverrideWhatTheySet() throws {
        let f = try #require(parse(Self.inboundOutbound))
        #expect(f.sectioned)
        #expect(f.listeners.map(\.name) == ["inbound", "outbound"])
        let (inb, outb) = (f.listeners[0], f.listeners[1])
        #expect(inb.line == 8 && outb.line == 12)
        #expect(inb.config.port == 2525 && outb.config.port == 2587)
        #expect(inb.config.fixedServerPort == 10025 && outb.config.fixedServerPort == 10587)
        #expect(inb.config.maxPerHost == 8 && outb.config.maxPerHost == 50)
        #expect(inb.config.timeoutIdle == 120 && outb.config.timeoutIdle == 120)
        #expect(inb.config.pidfile == "/run/smtpgate.pid" && outb.config.pidfile == "/run/smtpgate.pid")
        #expect(inb.config.restrictions[.recipient]?.count == 2 && inb.config.restrictions[.client] == nil)
        #expect(outb.config.restrictions[.client]?.count == 2 && outb.config.restrictions[.recipient] == nil)
        // The global block itself makes no listener once there are [listener] sections.
        #expect(f.listener(named: "main") == nil)
    }

    @Test(arguments: [
        ("mode fixed\nfixed_server 127.0.0.1\n[listener a]\nport 2525\nset_user nobody\n", 5,
         "option 'set_user' is the daemon's: set it before the first section"),
        ("mode fixed\nfixed_server 127.0.0.1\n[listener a]\nport 2525\nratelimit_clients 1000\n", 5,
         "option 'ratelimit_clients' is the daemon's: set it before the first section"),
        ("mode fixed\nfixed_server 127.0.0.1\n[forward a]\nport 2525\nratelimit_connections 10/60\n", 5,
         "option 'ratelimit_connections' is for SMTP listeners, not [forward] sections"),
        ("mode fixed\nfixed_server 127.0.0.1\n[forward a]\nport 2525\nlock_on virus\n", 5,
         "option 'lock_on' is for SMTP listeners, not [forward] sections"),
        ("mode fixed\nfixed_server 127.0.0.1\n[listener a]\nport 2525\nport 2526\n", 5,
         "option 'port' is already set on line 4"),
        ("mode fixed\nfixed_server 127.0.0.1\n[listener a]\nallow 10.0.0.*\n", 4,
         "option 'allow' belongs in [forward] sections (SMTP listeners use client_restrictions)"),
        ("mode fixed\nfixed_server 127.0.0.1\n[forward a]\nport 2525\nrecipient_restrictions permit\n", 5,
         "option 'recipient_restrictions' is for SMTP listeners, not [forward] sections"),
        ("mode fixed\nfixed_server 127.0.0.1\n[listener a]\nbogus 1\n", 4, "unknown option 'bogus'"),
    ])
    func optionsOutOfPlaceNameTheirLine(text: String, line: Int, message: String) throws {
        let e = try #require(failure(text))
        #expect(e.file == Self.file)
        #expect(e.line == line)
        #expect(e.message == message)
    }

    @Test(arguments: [
        ("[listener a\n", "a section header is [listener NAME] or [forward NAME], got '[listener a'"),
        ("[listener]\n", "a section header is [listener NAME] or [forward NAME], got '[listener]'"),
        ("[listener a b]\n", "a section header is [listener NAME] or [forward NAME], got '[listener a b]'"),
        ("[server a]\n", "unknown section kind 'server' (known: listener, forward)"),
        ("[listener a/b]\n", "section name 'a/b': expected 1 to 64 letters, digits, '-', '_' or '.'"),
        ("[listener \(String(repeating: "x", count: 65))]\n",
         "section name '\(String(repeating: "x", count: 65))': expected 1 to 64 letters, digits, '-', '_' or '.'"),
        ("[listener a\u{1b}[2J]\n", "section name 'a\\x1b[2J': expected 1 to 64 letters, digits, '-', '_' or '.'"),
    ])
    func badHeaders(text: String, message: String) throws {
        let e = try #require(failure("mode fixed\nfixed_server 127.0.0.1\n" + text))
        #expect(e.line == 3)
        #expect(e.message == message)
    }

    @Test func headerSpacingAndCaseOfTheKind() throws {
        let f = try #require(parse("mode fixed\nfixed_server 127.0.0.1\n[ Listener  in ]\nport 2525\n"))
        #expect(f.listeners.map(\.name) == ["in"])
    }

    @Test func namesAreOneNamespaceAcrossKinds() throws {
        let e = try #require(failure("mode fixed\nfixed_server 127.0.0.1\n[listener a]\nport 2525\n[forward a]\nport 2526\n"))
        #expect(e.line == 5)
        #expect(e.message.hasPrefix("a section named 'a' is already on line 3"))
    }

    @Test func aListenerWithoutModeNamesItsHeader() throws {
        let e = try #require(failure("# no mode anywhere\n[listener in]\nport 2525\n"))
        #expect(e.line == 2)
        #expect(e.message.hasPrefix("[listener in]: option 'mode' is not set"))
        let e2 = try #require(failure("mode fixed\n[listener in]\nport 2525\n"))
        #expect(e2.message == "[listener in]: mode fixed needs fixed_server")
        #expect(e2.line == 1)
    }

    @Test(arguments: [
        // Same port, one address covering the other: the kernel (SO_REUSEPORT) would split connections.
        ("bind_address 0.0.0.0\nport 2525", "bind_address 127.0.0.1\nport 2525", true),
        ("bind_address 127.0.0.1\nport 2525", "bind_address 127.0.0.1\nport 2525", true),
        ("bind_address ::\nport 2525", "bind_address 127.0.0.1\nport 2525", true),
        ("bind_address 0.0.0.0\nport 2525", "bind_address ::1\nport 2525", false),
        ("bind_address 127.0.0.1\nport 2525", "bind_address 127.0.0.2\nport 2525", false),
        ("bind_address 127.0.0.1\nport 2525", "bind_address 127.0.0.1\nport 2526", false),
    ])
    func overlappingListeningEndsAreRefused(a: String, b: String, refused: Bool) throws {
        let text = "mode fixed\nfixed_server 127.0.0.1\n[listener a]\n\(a)\n[listener b]\n\(b)\n"
        if refused {
            let e = try #require(failure(text))
            #expect(e.line == 6)
            #expect(e.message.contains("'b' listens on"))
            #expect(e.message.contains("which 'a' (line 3) already listens on"))
        } else {
            #expect(parse(text)?.listeners.count == 2)
        }
    }

    @Test func globalModeWithOnlyForwardsKeepsTheMainListener() throws {
        let f = try #require(parse("mode fixed\nfixed_server 127.0.0.1\nport 2525\n[forward web]\nport 8443\nfixed_server_port 443\n"))
        #expect(f.listeners.map(\.name) == ["main"])
        #expect(f.forwards.map(\.name) == ["web"])
        #expect(f.forwards[0].config.port == 8443 && f.forwards[0].config.fixedServerPort == 443)
    }

    @Test func forwardsWithoutAGlobalModeMakeNoSMTPListener() throws {
        let f = try #require(parse("[forward web]\nmode fixed\nfixed_server 127.0.0.1\nport 8443\nfixed_server_port 443\n"))
        #expect(f.listeners.isEmpty)
        #expect(f.forwards.map(\.name) == ["web"])
    }

    @Test func renderShowsTheDaemonOptionsOnceAndEverySection() throws {
        let f = try #require(parse(Self.inboundOutbound))
        let text = ConfigParser.render(f)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        #expect(lines.first == "# the daemon's options (before the first section)")
        #expect(lines.filter { $0 == "pidfile /run/smtpgate.pid" }.count == 1)
        let inb = try #require(lines.firstIndex(of: "[listener inbound]"))
        let outb = try #require(lines.firstIndex(of: "[listener outbound]"))
        #expect(inb < outb)
        #expect(lines[inb..<outb].contains("port 2525"))
        #expect(lines[outb...].contains("port 2587"))
        #expect(lines[outb...].contains("max_per_host 50"))
        #expect(lines[inb..<outb].contains("max_per_host 8"))
        // Daemon options appear only in the global block.
        #expect(!lines[inb...].contains { $0.hasPrefix("pidfile ") || $0.hasPrefix("set_user") || $0.hasPrefix("# set_user") })
        // A file without sections prints as it always has.
        let plain = try #require(parse("mode fixed\nfixed_server 127.0.0.1\n"))
        #expect(ConfigParser.render(plain) == ConfigParser.render(plain.global))
    }

    @Test func warningsNameTheirListener() throws {
        let f = try #require(parse("mode fixed\nfixed_server 127.0.0.1\n[listener a]\nport 2525\nearlytalker_wait 2\n[listener b]\nport 2526\n"))
        #expect(ConfigParser.warnings(f) == ["[listener a] earlytalker_wait is set but earlytalker is off: connections wait for nothing"])
    }

    /// The reload line's `changed=`: kept sections' options by `NAME:option`, the daemon's by name.
    @Test func changesNameWhatAReloadChanges() throws {
        let base = "mode fixed\nfixed_server 127.0.0.1\nshutdown_timeout 5\n[listener in]\nport 2525\n[forward web]\nport 8443\nfixed_server_port 443\nallow 10.0.0.*\n"
        let a = try #require(parse(base))
        let b = try #require(parse(base.replacingOccurrences(of: "shutdown_timeout 5", with: "shutdown_timeout 9")
            .replacingOccurrences(of: "port 2525\n", with: "port 2525\nmax_connections 7\n")
            .replacingOccurrences(of: "allow 10.0.0.*", with: "allow 10.0.1.*") + "[listener new]\nport 2526\n"))
        #expect(ConfigParser.changes(from: a, to: b) == ["shutdown_timeout", "in:max_connections", "web:allow"],
                "the new listener is the reload's added=, not a change")
        #expect(ConfigParser.changes(from: a, to: a).isEmpty)
        let plain = try #require(parse("mode fixed\nfixed_server 127.0.0.1\n"))
        let plainB = try #require(parse("mode fixed\nfixed_server 127.0.0.1\ntimeout_idle 60\nlog_level notice\n"))
        #expect(ConfigParser.changes(from: plain, to: plainB) == ["timeout_idle", "log_level"])
    }

    @Test func optionScopesAreATable() {
        #expect(OptionScope.of("set_user") == .daemon)
        #expect(OptionScope.of("ratelimit_messages") == .listener, "each listener may count with its own limits")
        #expect(OptionScope.of("lock_on") == .listener && OptionScope.of("lock_duration") == .listener)
        #expect(OptionScope.of("ratelimit_override") == .daemon && OptionScope.of("lock_exempt") == .daemon)
        #expect(OptionScope.of("port") == .connection)
        #expect(OptionScope.of("recipient_restrictions") == .listener)
        #expect(OptionScope.of("allow") == .forward)
        #expect(OptionScope.reload("port") == .rebinds)
        #expect(OptionScope.reload("set_user") == .restart)
        #expect(OptionScope.reload("timeout_idle") == .applies)
        // Every name in the scope table is an option (a typo there would silently make an option per-listener).
        let known = Set(ConfigParser.optionNames)
        for name in OptionScope.daemonOptions.union(OptionScope.connectionOptions) {
            #expect(known.contains(name), "\(name)")
        }
    }

    static let forwards = """
        allow 10.0.0.*
        deny 10.0.0.5
        [forward web]
        bind_address 127.0.0.1
        port 8443
        mode fixed
        fixed_server 192.0.2.10
        fixed_server_port 443
        allow 10.0.0.1?
        allow 10.0.0.2?
        deny 10.0.0.13
        [forward range]
        bind_address 127.0.0.1
        port 10001-10003
        mode fixed
        fixed_server 192.0.2.10
        fixed_server_port 20001-20003
        """

    @Test func forwardsCarryTheirRangesAndTheGlobalRules() throws {
        let f = try #require(parse(Self.forwards))
        #expect(f.listeners.isEmpty)
        let (web, range) = (f.forwards[0], f.forwards[1])
        #expect(web.ports.description == "8443" && web.targetPort(for: 8443) == 443)
        #expect(web.config.forwardRules.globalAllow.map(\.text) == ["10.0.0.*"])
        #expect(web.config.forwardRules.globalDeny.map(\.text) == ["10.0.0.5"])
        #expect(web.config.forwardRules.allow.map(\.text) == ["10.0.0.1?", "10.0.0.2?"])
        #expect(web.config.forwardRules.deny.map(\.text) == ["10.0.0.13"])
        #expect(web.config.forwardRules.admits("10.0.0.12") == .allowed)
        #expect(web.config.forwardRules.admits("10.0.0.13") != .allowed)
        #expect(web.config.forwardRules.admits("10.0.0.5") != .allowed)
        // A forward without rules of its own still has the global ones.
        #expect(range.config.forwardRules.allow.isEmpty && range.config.forwardRules.globalAllow.count == 1)
        #expect(range.ports.description == "10001-10003" && range.targetPorts.description == "20001-20003")
        #expect(range.targetPort(for: 10002) == 20002)
        let shown = ConfigParser.render(f)
        #expect(shown.contains("[forward range]\nbind_address 127.0.0.1\nport 10001-10003\n"))
        #expect(shown.contains("fixed_server_port 20001-20003\n"))
        #expect(shown.contains("allow 10.0.0.1?\nallow 10.0.0.2?\ndeny 10.0.0.13\n"))
    }

    @Test(arguments: [
        ("[forward a]\nmode fixed\nfixed_server 127.0.0.1\nport 10001-10003\nfixed_server_port 20001-20002\n", 5,
         "[forward a]: fixed_server_port 20001-20002 has 2 ports and port 10001-10003 has 3: a range maps one to one onto a range of the same length (or give a single port)"),
        ("[forward a]\nmode fixed+xclient\nfixed_server 127.0.0.1\nport 10001\n", 2,
         "[forward a]: mode fixed+xclient is SMTP's (XCLIENT is an SMTP command): a forward uses fixed, netfilter, tproxy, remote-udp or getsockname"),
        ("[forward a]\nmode fixed\nfixed_server 127.0.0.1\nport 10003-10001\n", 4, "option 'port': "),
        ("[forward a]\nmode fixed\nfixed_server 127.0.0.1\nport 1\nallow evil.example.com\n", 5, "option 'allow': "),
        ("allow 10.0.0.0/33\n[forward a]\nmode fixed\nfixed_server 127.0.0.1\nport 1\n", 1, "option 'allow': "),
        ("[forward a]\nmode fixed\nfixed_server 127.0.0.1\nport 10001-10003\n[forward b]\nmode fixed\nfixed_server 127.0.0.1\nport 10003\n", 5,
         "'b' listens on 0.0.0.0:10003, which 'a' (line 1) already listens on 0.0.0.0:10003 covers: give one of them another port or address"),
    ])
    func badForwards(text: String, line: Int, message: String) throws {
        let e = try #require(failure(text))
        #expect(e.line == line)
        #expect(e.message.hasPrefix(message), "\(e.message)")
    }

    @Test func officeMoveTrapIsWarned() throws {
        let f = try #require(parse("allow 10.1.*\n[forward web]\nmode fixed\nfixed_server 127.0.0.1\nport 443\nallow *\n"))
        let w = ConfigParser.warnings(f)
        #expect(w.count == 1)
        #expect(w.first?.hasPrefix("forward web: allow * admits only what the global allow rules admit (10.1.*)") == true)
    }
}
