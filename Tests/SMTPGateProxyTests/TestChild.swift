import Foundation

/// A server a test runs as its child (dnsmasq, postgrey), started with posix_spawn rather than Foundation's
/// Process: dnsmasq closes the descriptors it inherits, which Process takes for the child's exit and then
/// blocks in wait4 for good. Its signal mask is clean: the test process's threads block signals and a child
/// inherits that mask, so without it the SIGTERM that stops the server would be ignored.
enum TestChild {
    /// Why the child could not start: `strerror`'s text.
    struct SpawnError: Error, CustomStringConvertible {
        let description: String
    }

    /// The child's pid. Standard input is /dev/null; standard output and error go to `output` (appended,
    /// created owner-only), or to /dev/null.
    static func spawn(_ argv: [String], output: String? = nil) throws(SpawnError) -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        if let output {
            posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_CREAT | O_APPEND, 0o600)
        } else {
            posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        }
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        var cargs: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        defer { for a in cargs { free(a) } }
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        var none = sigset_t()
        sigemptyset(&none)
        posix_spawnattr_setsigmask(&attr, &none)
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGMASK))
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, argv[0], &actions, &attr, &cargs, environ)
        guard rc == 0 else { throw SpawnError(description: String(cString: strerror(rc))) }
        return pid
    }
}
