#if canImport(Glibc)
import Glibc
#endif
import NIOConcurrencyHelpers
import NIOCore
import SMTPGateCore

/// Runs `action_script` for events that found something, without ever holding up the caller: at most
/// `maxConcurrent` scripts at once, each on its own thread that spawns, waits and reaps it; later events wait
/// in a bounded FIFO and are dropped (and logged) beyond it.
final class ActionRunner: Sendable {
    /// The only variable the script gets besides the event's: nothing of the daemon's environment leaks.
    static let path = "/usr/sbin:/usr/bin:/sbin:/bin"

    let script: String
    let timeout: TimeAmount
    let maxConcurrent: Int
    let queueLimit: Int
    let proxyName: String
    private let log: @Sendable (LogRecord) -> Void
    private let observer: ServiceObserver?
    private let state = NIOLockedValueBox(State())

    private struct Job {
        var event: ActionEvent
        var session: String
    }

    /// Invariant: `queue` holds jobs only while `running == maxConcurrent`, so a queued job always has a
    /// thread that will take it when its own script ends.
    private struct State {
        var running = 0
        var queue = CircularBuffer<Job>()
    }

    init(script: String, timeout: Double, maxConcurrent: Int, queueLimit: Int = 64, proxyName: String,
         observer: ServiceObserver? = nil, log: @escaping @Sendable (LogRecord) -> Void) {
        self.script = script
        self.timeout = .nanoseconds(Int64(min(max(timeout, 0), 7 * 86_400) * 1e9))
        self.maxConcurrent = max(1, maxConcurrent)
        self.queueLimit = max(0, queueLimit)
        self.proxyName = proxyName
        self.log = log
        self.observer = observer
    }

    /// Returns at once, from any thread.
    func run(_ event: ActionEvent, session: String) {
        let job = Job(event: event, session: session)
        enum Admission { case start, queued, dropped }
        let admission: Admission = state.withLockedValue { s in
            if s.running < maxConcurrent {
                s.running += 1
                return .start
            }
            if s.queue.count < queueLimit {
                s.queue.append(job)
                return .queued
            }
            return .dropped
        }
        switch admission {
        case .start:
            launch(job)
        case .queued:
            break
        case .dropped:
            observer?.observe(.actionRun(.dropped))
            log(ActionLog.dropped(session: session, found: event.found, script: script, reason: "queue_full"))
        }
    }

    /// Gives `job` a thread of its own; if none can be had, the slot passes to the next queued job.
    private func launch(_ first: Job) {
        var job: Job? = first
        while let current = job {
            let err = ActionRunner.detachThread { [self] in work(current) }
            if err == 0 { return }
            observer?.observe(.actionRun(.failed))
            log(ActionLog.failed(session: current.session, found: current.event.found, script: script,
                                 error: "thread: \(errnoText(err))"))
            job = next()
        }
    }

    private func work(_ first: Job) {
        var job: Job? = first
        while let current = job {
            execute(current)
            job = next()
        }
    }

    /// The next queued job, or the slot is given back.
    private func next() -> Job? {
        state.withLockedValue { s in
            if let job = s.queue.popFirst() { return job }
            s.running -= 1
            return nil
        }
    }

    private func execute(_ job: Job) {
        let found = job.event.found
        let started = NIODeadline.now()
        let env = job.event.environment(proxyName: proxyName) + [("PATH", ActionRunner.path)]
        var pid: pid_t = 0
        let err = ActionRunner.spawn(path: script, arguments: job.event.arguments(script: script), environment: env,
                                     pid: &pid)
        if err != 0 {
            observer?.observe(.actionRun(.failed))
            log(ActionLog.failed(session: job.session, found: found, script: script, error: errnoText(err)))
            return
        }
        let outcome = ActionRunner.wait(pid, until: started + timeout)
        let elapsed = Double((NIODeadline.now() - started).nanoseconds) / 1e9
        observer?.observe(.actionRun(.init(outcome)))
        log(ActionLog.finished(session: job.session, found: found, script: script, outcome: outcome, time: elapsed))
    }

    /// Waits for `pid` to end, killing its process group at `deadline`, and always reaps it. Polls with
    /// WNOHANG because POSIX has no blocking wait with a timeout; the same thread reaps and kills, so a pid
    /// that was reaped and reused can never be signalled.
    private static func wait(_ pid: pid_t, until deadline: NIODeadline) -> ActionLog.Outcome {
        var pause: Int64 = 1_000_000
        while true {
            var status: Int32 = 0
            let r = waitpid(pid, &status, WNOHANG)
            if r == pid { return outcome(status) }
            if r == -1 {
                if errno == EINTR { continue }
                return .unknown
            }
            let left = (deadline - NIODeadline.now()).nanoseconds
            if left <= 0 {
                kill(-pid, SIGKILL)
                while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
                return .timedOut
            }
            var ts = timespec(tv_sec: 0, tv_nsec: Int(min(pause, left)))
            nanosleep(&ts, nil)
            pause = min(pause * 2, 25_000_000)
        }
    }

    private static func outcome(_ status: Int32) -> ActionLog.Outcome {
        let signal = status & 0x7f
        return signal == 0 ? .exited(Int((status >> 8) & 0xff)) : .signalled(Int(signal))
    }

    /// glibc's POSIX_SPAWN_SETSID, a GNU extension Swift's Glibc module leaves out: like smtp-gated's setsid,
    /// the script leads its own process group, so a timeout kills everything it started.
    private static let spawnSetSID: Int32 = 0x80

    private typealias AddCloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>?, Int32) -> Int32

    /// `posix_spawn_file_actions_addclosefrom_np` (glibc 2.34), not exposed to Swift either. NIO's sockets are
    /// not close-on-exec, so without it a script would hold client and listener sockets open.
    private static let addCloseFrom: AddCloseFrom? = {
        guard let handle = dlopen(nil, RTLD_NOW),
              let symbol = dlsym(handle, "posix_spawn_file_actions_addclosefrom_np") else { return nil }
        return unsafeBitCast(symbol, to: AddCloseFrom.self)
    }()

    /// Starts the script with exactly `environment`, /dev/null on 0–2, no other descriptor, default signal
    /// dispositions (the daemon ignores TERM, HUP, PIPE…) and an empty signal mask, in a new session.
    /// Returns 0 or the error.
    private static func spawn(path: String, arguments: [String], environment: [(String, String)],
                              pid: inout pid_t) -> Int32 {
        guard let addCloseFrom else { return ENOSYS }
        var actions = posix_spawn_file_actions_t()
        var attr = posix_spawnattr_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }

        for fd: Int32 in 0...2 {
            let rc = posix_spawn_file_actions_addopen(&actions, fd, "/dev/null", fd == 0 ? O_RDONLY : O_WRONLY, 0)
            if rc != 0 { return rc }
        }
        var rc = addCloseFrom(&actions, 3)
        if rc != 0 { return rc }

        var empty = sigset_t()
        sigemptyset(&empty)
        var all = sigset_t()
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attr, &empty)
        posix_spawnattr_setsigdefault(&attr, &all)
        rc = posix_spawnattr_setflags(&attr, Int16(spawnSetSID | Int32(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF)))
        if rc != 0 { return rc }

        let argv = arguments.map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.0)=\($0.1)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        return posix_spawn(&pid, path, &actions, &attr, argv, envp)
    }

    private final class ThreadBody {
        let body: () -> Void
        init(_ body: @escaping () -> Void) { self.body = body }
    }

    /// A detached thread of its own for a script's whole run: the wait blocks for up to `timeout_action`,
    /// which must never be an event loop's or a shared pool's time. Returns 0 or the error.
    private static func detachThread(_ body: @escaping () -> Void) -> Int32 {
        let box = Unmanaged.passRetained(ThreadBody(body))
        var thread = pthread_t()
        let rc = pthread_create(&thread, nil, { arg in
            Unmanaged<ThreadBody>.fromOpaque(arg!).takeRetainedValue().body()
            return nil
        }, box.toOpaque())
        if rc != 0 {
            box.release()
            return rc
        }
        pthread_detach(thread)
        return 0
    }
}
