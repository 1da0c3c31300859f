import Foundation
import SMTPGateCore
import Testing
@testable import SMTPGateProxy

/// A temporary directory with scripts in it, and the log records a runner produced.
final class ActionFixture: @unchecked Sendable {
    let dir: String
    private let lock = NSLock()
    private var records: [LogRecord] = []

    init() throws {
        dir = NSTemporaryDirectory() + "smtpgate-action-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: false)
    }

    deinit { try? FileManager.default.removeItem(atPath: dir) }

    /// Writes `body` after a `#!/bin/sh` line; `DIR` in it becomes the fixture's directory.
    /// Written through a close-on-exec descriptor: a process another test spawns meanwhile must not inherit
    /// it, or executing the script fails with ETXTBSY for as long as that process lives.
    func script(_ name: String, _ body: String, mode: Int = 0o755) throws -> String {
        let path = dir + "/" + name
        let bytes = Array(("#!/bin/sh\n" + body.replacingOccurrences(of: "DIR", with: dir) + "\n").utf8)
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw CocoaError(.fileWriteUnknown) }
        let written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        close(fd)
        guard written == bytes.count else { throw CocoaError(.fileWriteUnknown) }
        try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: path)
        return path
    }

    func write(_ name: String, _ text: String) throws {
        try text.write(toFile: dir + "/" + name, atomically: true, encoding: .utf8)
    }

    func read(_ name: String) -> String? {
        try? String(contentsOfFile: dir + "/" + name, encoding: .utf8)
    }

    func runner(_ script: String, timeout: Double = 10, maxConcurrent: Int = 4, queueLimit: Int = 64) -> ActionRunner {
        ActionRunner(script: script, timeout: timeout, maxConcurrent: maxConcurrent, queueLimit: queueLimit,
                     proxyName: "gate.test", log: { [self] r in lock.withLock { records.append(r) } })
    }

    var logged: [LogRecord] { lock.withLock { records } }

    func logged(_ event: String) -> [LogRecord] { logged.filter { $0.event == event } }

    /// Polls `condition` every 10 ms for at most `seconds`.
    func wait(_ seconds: Double, _ condition: () -> Bool) -> Bool {
        let end = Date().addingTimeInterval(seconds)
        while Date() < end {
            if condition() { return true }
            usleep(10_000)
        }
        return condition()
    }

    /// Gone or a zombie someone else (init) has to reap: either way, not running and not ours to reap.
    static func isDead(_ pid: Int32) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8) else { return true }
        return stat.split(separator: ")").last?.split(separator: " ").first == "Z"
    }
}

extension LogRecord {
    subscript(_ key: String) -> LogRecord.Value? { fields.first { $0.0 == key }?.1 }
}

@Suite("action_script runner: real scripts", .serialized)
struct ActionRunnerTests {
    static let event = ActionEvent(
        found: .spam, spamScore: 1000, sourceIP: "192.0.2.7", sourcePort: 40000,
        targetIP: "198.51.100.1", targetPort: 25, localIP: "192.0.2.1", localPort: 9199, ident: "alice",
        helo: "evil\r\nX=1 $(touch /tmp/pwned)", mailFrom: "<a@x.test>", recipients: 2, size: 4096,
        transaction: 1, sessionStart: 1_795_255_200)

    @Test func scriptGetsExactlyTheEnvironmentArgumentsAndNothingElse() throws {
        let fx = try ActionFixture()
        // A descriptor without close-on-exec, as NIO's sockets are: the script must not inherit it.
        let leak = open(fx.dir, O_RDONLY)
        #expect(leak > 2)
        defer { close(leak) }
        // The daemon ignores TERM, HUP, PIPE, USR1, USR2; the script must start with default dispositions.
        signal(SIGUSR2, SIG_IGN)
        let script = try fx.script("env.sh", """
            cat /proc/$$/environ > DIR/env.tmp
            printf '%s\\n' "$0" "$@" > DIR/argv
            std=$(readlink /proc/$$/fd/0 /proc/$$/fd/1 /proc/$$/fd/2)
            leak=$(readlink /proc/$$/fd/\(leak))
            echo "$std" > DIR/std
            echo "$leak" > DIR/leak
            cut -d' ' -f6 /proc/$$/stat > DIR/sid
            grep SigIgn /proc/$$/status > DIR/sigign
            echo $$ > DIR/pid
            mv DIR/env.tmp DIR/env
            """)
        let runner = fx.runner(script)
        runner.run(Self.event, session: "s1")
        #expect(fx.wait(10) { !fx.logged("action").isEmpty })

        let done = try #require(fx.logged("action").first)
        #expect(done.level == .notice)
        #expect(done["session"] == .text("s1") && done["found"] == .text("SPAM"))
        #expect(done["script"] == .text(script) && done["exit"] == .int(0))
        #expect(fx.logged.count == 1)

        let raw = try #require(fx.read("env"))
        let received = raw.split(separator: "\0", omittingEmptySubsequences: true).map { entry -> (String, String) in
            let kv = entry.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            return (String(kv[0]), kv.count > 1 ? String(kv[1]) : "")
        }
        let expected = Self.event.environment(proxyName: "gate.test") + [("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")]
        #expect(received.map(\.0) == expected.map(\.0))
        #expect(received.map(\.1) == expected.map(\.1))
        #expect(received.first { $0.0 == "HELO" }?.1 == "evil??X=1 $(touch /tmp/pwned)")

        #expect(fx.read("argv") == "\(script)\nSPAM\n192.0.2.7\nalice\n198.51.100.1\n")
        #expect(fx.read("std") == "/dev/null\n/dev/null\n/dev/null\n")
        #expect(fx.read("leak") != fx.dir + "\n", "the inherited descriptor was closed")
        // Only the standard signals: glibc's posix_spawn leaves its own internal real-time ones ignored.
        let ignored = fx.read("sigign").flatMap { UInt64($0.dropFirst("SigIgn:\t".count).prefix(16), radix: 16) }
        #expect(ignored.map { $0 & 0x7fff_ffff } == 0, "\(String(describing: fx.read("sigign")))")
        let pid = try #require(fx.read("pid").flatMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) })
        #expect(fx.read("sid") == "\(pid)\n", "the script leads a session of its own")
        #expect(!FileManager.default.fileExists(atPath: "/proc/\(pid)"), "reaped, not a zombie")
    }

    @Test func slowScriptAndWhatItStartedAreKilledAtTheTimeout() throws {
        let fx = try ActionFixture()
        let script = try fx.script("slow.sh", """
            sleep 30 &
            echo $! > DIR/child
            echo $$ > DIR/pid
            wait
            """)
        let runner = fx.runner(script, timeout: 0.5)
        let started = Date()
        runner.run(Self.event, session: "s2")
        #expect(fx.wait(10) { !fx.logged("action").isEmpty })
        let elapsed = Date().timeIntervalSince(started)
        #expect(elapsed >= 0.5 && elapsed < 5)

        let done = try #require(fx.logged("action").first)
        #expect(done.level == .warning)
        #expect(done["session"] == .text("s2") && done["error"] == .text("timeout"))
        #expect(done["exit"] == nil)
        if case .seconds(let t)? = done["time"] {
            #expect(t >= 0.5 && t < 5)
        } else {
            Issue.record("no time field: \(done)")
        }
        let pid = try #require(fx.read("pid").flatMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) })
        let child = try #require(fx.read("child").flatMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) })
        #expect(!FileManager.default.fileExists(atPath: "/proc/\(pid)"), "reaped, not a zombie")
        #expect(fx.wait(5) { ActionFixture.isDead(child) }, "the script's own child was killed with its group")
    }

    @Test func exitCodeAndSignalAreReported() throws {
        let fx = try ActionFixture()
        let failing = fx.runner(try fx.script("exit3.sh", "exit 3"))
        failing.run(Self.event, session: "s3")
        // Ignored here as in the daemon: the signal only ends the script if its dispositions were reset.
        signal(SIGUSR2, SIG_IGN)
        let killed = fx.runner(try fx.script("usr2.sh", "kill -USR2 $$\nsleep 5"))
        killed.run(Self.event, session: "s4")
        // Bounded but generous: under a loaded machine (parallel builds) the two scripts have been seen to need over 10 s.
        #expect(fx.wait(30) { fx.logged("action").count == 2 })
        let byExit = fx.logged("action").first { $0["session"] == .text("s3") }
        let bySignal = fx.logged("action").first { $0["session"] == .text("s4") }
        #expect(byExit?["exit"] == .int(3) && byExit?.level == .warning)
        #expect(bySignal?["signal"] == .int(Int(SIGUSR2)) && bySignal?["exit"] == nil)
    }

    @Test func neverMoreThanMaxConcurrentAtOnce() throws {
        let fx = try ActionFixture()
        try fx.write("count", "0\n")
        try fx.write("max", "0\n")
        let script = try fx.script("count.sh", """
            exec 9>>DIR/lock
            flock 9
            n=$(( $(cat DIR/count) + 1 ))
            echo $n > DIR/count
            if [ "$n" -gt "$(cat DIR/max)" ]; then echo $n > DIR/max; fi
            flock -u 9
            sleep 0.3
            flock 9
            echo $(( $(cat DIR/count) - 1 )) > DIR/count
            flock -u 9
            """)
        let runner = fx.runner(script, maxConcurrent: 2)
        for i in 0..<6 { runner.run(Self.event, session: "c\(i)") }
        #expect(fx.wait(15) { fx.logged("action").count == 6 })
        #expect(fx.logged("action").allSatisfy { $0["exit"] == .int(0) })
        #expect(Set(fx.logged("action").compactMap { r -> String? in
            if case .text(let s)? = r["session"] { return s } else { return nil }
        }) == Set((0..<6).map { "c\($0)" }))
        #expect(fx.read("max") == "2\n")
        #expect(fx.read("count") == "0\n")
    }

    @Test func beyondTheQueueEventsAreDroppedAndLogged() throws {
        let fx = try ActionFixture()
        let runner = fx.runner(try fx.script("nap.sh", "sleep 0.3"), maxConcurrent: 1, queueLimit: 2)
        let started = Date()
        for i in 0..<5 { runner.run(Self.event, session: "q\(i)") }
        #expect(Date().timeIntervalSince(started) < 0.25, "run returns at once")
        let dropped = fx.logged("action_dropped")
        #expect(dropped.map { $0["session"] } == [.text("q3"), .text("q4")])
        #expect(dropped.allSatisfy { $0["reason"] == .text("queue_full") && $0["found"] == .text("SPAM") })
        #expect(fx.wait(10) { fx.logged("action").count == 3 })
        #expect(fx.logged("action").map { $0["session"] } == [.text("q0"), .text("q1"), .text("q2")], "FIFO")
        #expect(fx.logged("action_dropped").count == 2)
    }

    @Test func scriptThatCannotRunIsLoggedAndFreesItsSlot() throws {
        let fx = try ActionFixture()
        let notExecutable = fx.runner(try fx.script("plain.sh", "exit 0", mode: 0o644), maxConcurrent: 1)
        for i in 0..<3 { notExecutable.run(Self.event, session: "f\(i)") }
        let missing = fx.runner(fx.dir + "/missing.sh")
        missing.run(Self.event, session: "m0")
        #expect(fx.wait(10) { fx.logged("action_failed").count == 4 })
        let failed = fx.logged("action_failed")
        #expect(failed.filter { $0["error"] == .text("Permission denied") }.count == 3)
        #expect(failed.first { $0["session"] == .text("m0") }?["error"] == .text("No such file or directory"))
        #expect(failed.allSatisfy { $0.level == .error })
        #expect(fx.logged("action").isEmpty)
    }
}
