import Foundation
import SMTPGateCore

/// A throw-away PostgreSQL server for the tests: Debian's binaries, run as `nobody` (PostgreSQL refuses
/// root), data and socket in a temporary directory, no TCP (`listen_addresses=''`), trust for the
/// `smtpgate` superuser. Starting fails with the server's own log rather than skipping anything.
final class PostgresTestServer {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    static let bin = "/usr/lib/postgresql/15/bin"
    let dir: String
    var data: String { "\(dir)/data" }
    var socketDir: String { "\(dir)/sock" }
    var url: PostgresURL {
        // The parser is the one the configuration uses.
        try! PostgresURL.parse("postgresql:///smtpgate?host=\(socketDir)&user=smtpgate")
    }

    init() throws {
        guard FileManager.default.isExecutableFile(atPath: "\(Self.bin)/initdb") else {
            throw Failure(description: "PostgreSQL is not installed (\(Self.bin)/initdb missing): run scripts/deps.sh or apt-get install postgresql")
        }
        var template = Array("/tmp/smtpgate-pg.XXXXXX".utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw Failure(description: "cannot make a temporary directory: \(String(cString: strerror(errno)))")
        }
        dir = String(cString: made)
        try FileManager.default.createDirectory(atPath: socketDir, withIntermediateDirectories: false)
        for p in [dir, socketDir] where geteuid() == 0 { chown(p, 65534, 65534) }
        try Self.run(["\(Self.bin)/initdb", "-D", data, "-U", "smtpgate", "--auth=trust", "-E", "UTF8", "--no-sync"], what: "initdb")
        try start()
        try Self.run(["\(Self.bin)/createdb", "-h", socketDir, "-U", "smtpgate", "smtpgate"], what: "createdb")
    }

    func start() throws {
        do {
            try Self.run(["\(Self.bin)/pg_ctl", "-D", data, "-l", "\(dir)/server.log", "-w", "-t", "30",
                          "-o", "-k \(socketDir) -c listen_addresses='' -F", "start"], what: "pg_ctl start")
        } catch {
            let log = (try? String(contentsOfFile: "\(dir)/server.log", encoding: .utf8)) ?? ""
            throw Failure(description: "\(error); server log: \(log.suffix(1500))")
        }
    }

    /// Fast shutdown: clients are disconnected, as when the server goes down under a proxy.
    func stop() throws {
        try Self.run(["\(Self.bin)/pg_ctl", "-D", data, "-m", "fast", "-w", "-t", "30", "stop"], what: "pg_ctl stop")
    }

    /// Stops the server if it runs and removes everything.
    func destroy() {
        _ = try? Self.run(["\(Self.bin)/pg_ctl", "-D", data, "-m", "immediate", "-w", "stop"], what: "pg_ctl stop")
        try? FileManager.default.removeItem(atPath: dir)
    }

    /// Runs SQL through psql as the superuser (for what the store itself must not do).
    func psql(_ sql: String) throws {
        try Self.run(["\(Self.bin)/psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", socketDir, "-U", "smtpgate", "-d", "smtpgate",
                      "-c", sql], what: "psql")
    }

    @discardableResult
    static func run(_ argv: [String], what: String) throws -> String {
        // PostgreSQL's server programs refuse to run as root.
        let full = geteuid() == 0 ? ["/usr/sbin/runuser", "-u", "nobody", "--"] + argv : argv
        // Output to a file, not a pipe, and a plain waitpid: the server pg_ctl leaves running inherits
        // descriptors and would hold a pipe open.
        let outPath = "/tmp/smtpgate-pgout.\(getpid()).\(UInt32.random(in: 0...UInt32.max))"
        defer { unlink(outPath) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        var cargs: [UnsafeMutablePointer<CChar>?] = full.map { strdup($0) } + [nil]
        defer { for a in cargs { free(a) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, full[0], &actions, nil, &cargs, environ)
        guard rc == 0 else { throw Failure(description: "\(what): cannot run \(full[0]): \(String(cString: strerror(rc)))") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0, errno == EINTR {}
        let text = (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? ""
        let exited = status & 0x7f == 0, code = (status >> 8) & 0xff
        guard exited, code == 0 else {
            throw Failure(description: "\(what) failed (status \(status)): \(text.suffix(1500))")
        }
        return text
    }
}
