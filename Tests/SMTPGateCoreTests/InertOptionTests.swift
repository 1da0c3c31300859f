import Testing
@testable import SMTPGateCore

/// smtp-gated's implementation-tuning options: accepted with their values checked, and named by
/// check-config as having no effect.
@Suite("smtp-gated options with no effect here")
struct InertOptionTests {
    static func file(_ text: String) throws -> ConfigFile {
        try ConfigParser.parseFile(bytes: Array(("mode fixed\nfixed_server 127.0.0.1\n" + text).utf8), file: "sg.conf")
    }

    @Test func anSmtpGatedTuningBlockLoadsAndEachIsNamedOnce() throws {
        let f = try Self.file("""
            buffer_size 1516
            pid_hash_size 4096
            host_hash_size 4096
            enfile_sleep 5
            locale pl_PL
            lock_perm 0660
            ratelimit_dst_expiration -1

            """)
        let w = ConfigParser.warnings(f)
        #expect(w.count == 7)
        #expect(w.first == "buffer_size has no effect in SMTPGate: each session's buffers grow with what it reads (swift-nio's allocator), up to the bounds in smtpgate(8)")
        #expect(w.contains { $0.hasPrefix("lock_perm has no effect in SMTPGate: locks are kept in state_store") })
        let shown = ConfigParser.render(f)
        #expect(shown.contains("# smtp-gated options with no effect here (see check-config's warnings)\nbuffer_size 1516\n"))
        let again = try ConfigParser.parseFile(bytes: Array(shown.utf8), file: "shown.conf")
        #expect(again.global == f.global, "check-config's output reads back as the same configuration")
        // An empty value (smtp-gated allows it for its strings) survives the round trip too.
        let empty = try Self.file("on_ident_flood_2\n")
        #expect(try ConfigParser.parseFile(bytes: Array(ConfigParser.render(empty).utf8), file: "e").global == empty.global)
    }

    @Test func withSectionsTheyAreNamedOnceNotPerListener() throws {
        let f = try Self.file("enfile_sleep 5\n[listener a]\nport 2525\n[listener b]\nport 2526\n")
        #expect(ConfigParser.warnings(f).filter { $0.contains("enfile_sleep") } == [
            "enfile_sleep has no effect in SMTPGate: out of descriptors, a connection is answered 421 at once and counted instead of pausing every accept (smtpgate(8), Out of descriptors)",
        ])
    }

    @Test(arguments: [
        ("buffer_size lots", 3, "option 'buffer_size': expected a whole number from 1 to 2147483647, got 'lots'"),
        ("lock_perm 0999", 3, "option 'lock_perm': expected an octal file mode such as 0660, got '0999'"),
        ("ratelimit_dst_expiration -2", 3, "option 'ratelimit_dst_expiration': expected -1 or a number of seconds, got '-2'"),
        ("enfile_sleep 5\nenfile_sleep 6", 4, "option 'enfile_sleep' is already set on line 3"),
        ("[listener a]\nport 2525\npid_hash_size 10", 5, "option 'pid_hash_size' is the daemon's: set it before the first section"),
    ])
    func badUsesNameTheirLine(_ text: String, _ line: Int, _ message: String) {
        do {
            _ = try Self.file(text + "\n")
            Issue.record("parsed: \(text)")
        } catch let error as ConfigError {
            #expect(error.line == line)
            #expect(error.message == message)
        } catch {
            Issue.record("\(error)")
        }
    }
}

/// smtp-gated's process options: priority and the resource limits are applied at start; chroot_path and
/// dspam_storage are refused with what to do instead.
@Suite("smtp-gated process options")
struct ProcessOptionTests {
    static func parse(_ line: String) throws -> Config {
        try ConfigParser.parse("mode fixed\nfixed_server 127.0.0.1\n\(line)\n", file: "sg.conf")
    }

    @Test(arguments: [("limit_core_size 64 M", Config.ResourceLimit.coreSize, 64 << 20), ("limit_fsize 100M", .fsize, 100 << 20),
                      ("limit_virt_size 2g", .virtSize, 2 << 30), ("limit_data_size 4096", .dataSize, 4096),
                      ("limit_core_size 0", .coreSize, 0), ("limit_fsize 1 K", .fsize, 1024),
                      ("limit_fsize 9999999G", .fsize, 9_999_999 << 30), ("limit_fsize 1152921504606846976", .fsize, 1 << 60)])
    func limitsReadAsSmtpGatedWritesThem(_ line: String, _ limit: Config.ResourceLimit, _ bytes: Int) throws {
        let c = try Self.parse(line)
        #expect(c.limits == [limit: bytes])
        #expect(ConfigParser.render(c).contains("\n\(limit.rawValue) \(bytes)\n"))
    }

    @Test func defaultsChangeNothing() throws {
        let c = try Self.parse("")
        #expect(c.limits.isEmpty && c.priority == nil)
        let shown = ConfigParser.render(c)
        #expect(shown.contains("\nlimit_virt_size -1\n") && shown.contains("\n# priority (not set)\n"))
        #expect(try Self.parse("limit_virt_size -1").limits.isEmpty)
    }

    @Test(arguments: ["limit_core_size 64 MB", "limit_core_size -2", "limit_fsize M", "limit_data_size 99999999999999999G",
                      "limit_fsize 999999999999999G", "limit_virt_size 2000000000G", "limit_fsize 1152921504606846977",
                      "limit_fsize 00000000000000000001",
                      "priority 20", "priority -21", "priority nice", "chroot_path /var/empty", "dspam_storage /var/lib/dspam"])
    func refused(_ line: String) {
        #expect(throws: ConfigError.self) { try Self.parse(line) }
    }

    @Test func chrootAndDspamSayWhatToUseInstead() throws {
        for (line, says) in [("chroot_path /var/empty", "confine the daemon with systemd"), ("dspam_storage /x", "antispam_type spamassassin")] {
            do {
                _ = try Self.parse(line)
                Issue.record("parsed \(line)")
            } catch let error as ConfigError {
                #expect(error.message.contains(says), "\(error.message)")
            }
        }
        #expect(try Self.parse("chroot_path /").priority == nil, "the root itself is no chroot")
        #expect(try Self.parse("priority -5").priority == -5)
    }

    @Test func smtpGatedsPostgresPlaceholdersLoadWithAWarning() throws {
        let f = try ConfigParser.parseFile(bytes: Array("mode fixed\nfixed_server 127.0.0.1\ndb_name smtpgated\non_virus UPDATE\n".utf8),
                                           file: "sg.conf")
        #expect(ConfigParser.warnings(f).filter { $0.contains("never implemented") }.count == 2)
    }
}
