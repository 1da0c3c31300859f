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
        #expect(!ConfigParser.render(f).contains("buffer_size"), "not an option of this daemon: not in the effective configuration")
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
