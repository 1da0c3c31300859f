#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import SMTPGateCore
import SMTPGateRuntime

/// Abuse control as the daemon runs it: the tables, the state store behind them, and the timers that tidy
/// the tables and save the counters. Made at start when `lock_on`, a rate limit or `state_store` asks for it.
final class AbuseService: @unchecked Sendable {
    let control: AbuseControl
    let writer: StateWriter
    let path: String
    private let timer: DispatchSourceTimer
    private var ticks = 0

    /// Changed counters are written this often (and at a clean stop): a crash loses at most this much
    /// counting, and the other proxies of a pool see this proxy's counts this much later (plus one
    /// writer interval to write and one to read).
    static let shareEvery = 2

    private init(control: AbuseControl, writer: StateWriter, path: String, queue: DispatchQueue) {
        self.control = control
        self.writer = writer
        self.path = path
        timer = DispatchSource.makeTimerSource(queue: queue)
    }

    /// Opens the store (a clear error if it cannot be used: the daemon must not start without its locks),
    /// loads locks and counters, and starts writing behind.
    static func start(_ file: ConfigFile, source: String, events: EventLog, queue: DispatchQueue) throws -> AbuseService? {
        guard file.abuseControl else { return nil }
        let config = file.global
        var stored: [StoredLock] = []
        var counters: [StoredCounter] = []
        // Read before the load, so the feeds replay whatever is written meanwhile.
        var marks = FeedMarks.beginning
        let path: String
        let writer: StateWriter
        let warn: @Sendable (String) -> Void = { events.record(AbuseLog.storeTrouble($0)) }
        if let url = config.stateStorePostgres {
            // A server shared by a pool may be down for a while: mail flows on memory, the writer warns
            // and catches up when it returns. Locks already on the server arrive through the feed then.
            path = url.description
            do {
                let store = try PostgresStateStore(url: url, source: source)
                defer { store.close() }
                marks = try FeedMarks.current(of: store)
                stored = try store.locks()
                counters = try store.counters()
            } catch {
                // The feeds then start from the beginning: everything on the server arrives when it answers.
                marks = .beginning
                warn("\(error); starting without the stored locks and counters")
            }
            writer = StateWriter(open: { () throws(StoreError) -> any StateBackend in try PostgresStateStore(url: url, source: source) },
                                 marks: marks, warn: warn)
        } else {
            guard let file = config.stateStorePath else { return nil }
            path = file
            try prepareDirectory(of: path, user: config.setUser)
            do {
                let store = try SQLiteStateStore(path: path, source: source)
                defer { store.close() }
                marks = try FeedMarks.current(of: store)
                stored = try store.locks()
                counters = try store.counters()
            } catch {
                throw DaemonError("state_store: \(error)")
            }
            if let user = config.setUser { chownStore(path, user: user) }
            writer = StateWriter(open: { () throws(StoreError) -> any StateBackend in try SQLiteStateStore(path: file, source: source) },
                                 marks: marks, warn: warn)
        }
        let service = AbuseService(control: AbuseControl(file: file, writer: writer, source: source), writer: writer,
                                   path: path, queue: queue)
        service.control.restore(locks: stored, counters: counters)
        writer.onLockChanges = { [weak service] in service?.control.absorb($0) }
        writer.onCounterChanges = { [weak service] in service?.control.absorb(counters: $0) }
        events.record(AbuseLog.started(path: path, locks: service.control.allLocks().count,
                                       clients: service.control.trackedClients))
        service.timer.schedule(deadline: .now() + 1, repeating: 1)
        service.timer.setEventHandler { [weak service] in service?.tick() }
        service.timer.resume()
        return service
    }

    private func tick() {
        control.tidy()
        ticks += 1
        if ticks % Self.shareEvery == 0 { control.shareCounters() }
    }

    /// At the end of the drain: the changed counters are saved and everything pending written, within a bound.
    func stop() {
        timer.cancel()
        control.shareCounters(limit: Int.max)
        _ = writer.flush(timeout: 2)
        writer.stop()
    }

    /// The store's directory is made (owner-only) for `set_user` like the spool, so the daemon can write
    /// there after dropping privileges (SQLite makes its -wal and -shm files beside the database). One that
    /// exists owned by root and owner-only (systemd's StateDirectory= with StateDirectoryMode=0700) is handed
    /// to `set_user`; any other (a shared /var/lib, say) is left alone.
    static func prepareDirectory(of path: String, user: String?) throws {
        guard let slash = path.lastIndex(of: "/") else { return }
        let dir = slash == path.startIndex ? "/" : String(path[..<slash])
        var st = stat()
        if stat(dir, &st) == 0 {
            if st.st_uid == 0, st.st_mode & 0o777 == 0o700, getuid() == 0, let user, let pw = getpwnam(user) {
                _ = chown(dir, pw.pointee.pw_uid, pw.pointee.pw_gid)
            }
            return
        }
        guard mkdir(dir, 0o700) == 0 else {
            throw DaemonError("state_store: cannot create the directory \(dir): \(errnoText())")
        }
        if let user, let pw = getpwnam(user) { _ = chown(dir, pw.pointee.pw_uid, pw.pointee.pw_gid) }
    }

    /// A file made while still root belongs to `set_user`, or the daemon could not write it after the drop.
    static func chownStore(_ path: String, user: String) {
        guard getuid() == 0, let pw = getpwnam(user) else { return }
        for p in [path, path + "-wal", path + "-shm"] { _ = chown(p, pw.pointee.pw_uid, pw.pointee.pw_gid) }
    }
}
