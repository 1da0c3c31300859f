#if canImport(Glibc)
import Glibc
#endif
import CSQLite
import SMTPGateCore

/// The state store's SQLite file (`state_store sqlite:PATH`): client locks and rate counters that
/// outlive a restart, shared by the proxies on a host and the admin command. Used from one thread at a
/// time; the caller serialises. Every read returns at most `rowLimit` rows, so a huge or hostile file
/// cannot take the process's memory.
public final class SQLiteStateStore: StateBackend {
    public static let schemaVersion: Int32 = 2
    public static let rowLimit = 100_000
    /// How long a tombstone outlives its removal: longer than any sharing proxy stays behind the feed.
    public static let tombstoneSeconds = 86_400.0
    static let busyMilliseconds: Int32 = 2_000

    public let path: String
    /// Who this connection writes as; recorded on tombstones so the feed can say who removed a lock.
    public let source: String
    private var db: OpaquePointer?

    public init(path: String, source: String = "admin") throws(StoreError) {
        self.path = path
        self.source = source
        let dir = Self.directory(of: path)
        var st = stat()
        guard stat(dir, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR else {
            throw StoreError(.missingDirectory, "cannot open the state store \(path): the directory \(dir) does not exist; create it or point state_store elsewhere")
        }
        let owner = try Self.createIfMissing(path, dir: dir)
        var handle: OpaquePointer?
        let rc = sqlite3_open_v2(path, &handle, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nil)
        db = handle
        guard rc == SQLITE_OK else {
            let e = error(rc, "opening it")
            close()
            throw e
        }
        do {
            sqlite3_busy_timeout(db, Self.busyMilliseconds)
            sqlite3_extended_result_codes(db, 1)
            try checkIntegrity()
            try exec("PRAGMA journal_mode=WAL")
            try exec("PRAGMA synchronous=NORMAL")
            try migrate()
            if let owner { Self.chownCompanions(path, to: owner) }
        } catch {
            close()
            throw error
        }
    }

    deinit { close() }

    public func close() {
        if let db { sqlite3_close_v2(db) }
        db = nil
    }

    // MARK: - Reading

    /// Every lock in force (not tombstones), oldest first, at most `rowLimit`.
    public func locks() throws(StoreError) -> [StoredLock] {
        var out: [StoredLock] = []
        try query("SELECT key, cause, reason, created, expires, source FROM locks WHERE removed = 0 ORDER BY version LIMIT ?",
                  [.int(Int64(Self.rowLimit))]) { s in out.append(Self.lock(s)) }
        return out
    }

    /// Every counter row, at most `rowLimit`.
    public func counters() throws(StoreError) -> [StoredCounter] {
        var out: [StoredCounter] = []
        try query("SELECT key, kind, seconds, bucket_start, current, previous, source FROM counters LIMIT ?",
                  [.int(Int64(Self.rowLimit))]) { s in
            out.append(Self.counter(s))
        }
        return out
    }

    /// The lock changes after `since`, in order, at most `rowLimit`; `mark` is what to pass next time.
    /// A lock put and removed since then appears once, as its removal: the feed keeps each key's last state.
    public func lockChanges(since: Int64) throws(StoreError) -> (changes: [LockChange], mark: Int64) {
        var changes: [LockChange] = []
        var mark = since
        try query("SELECT key, cause, reason, created, expires, source, removed, version FROM locks WHERE version > ? ORDER BY version LIMIT ?",
                  [.int(since), .int(Int64(Self.rowLimit))]) { s in
            changes.append(sqlite3_column_int(s, 6) != 0 ? .removed(key: Self.text(s, 0), source: Self.text(s, 5)) : .put(Self.lock(s)))
            mark = sqlite3_column_int64(s, 7)
        }
        return (changes, mark)
    }

    /// The newest lock version; a feed started here sees only what comes after.
    public func currentMark() throws(StoreError) -> Int64 {
        try meta("lock_version")
    }

    /// The counter rows written after `since` (by anyone), in order, at most `rowLimit`.
    public func counterChanges(since: Int64) throws(StoreError) -> (counters: [StoredCounter], mark: Int64) {
        var out: [StoredCounter] = []
        var mark = since
        try query("SELECT key, kind, seconds, bucket_start, current, previous, source, version FROM counters WHERE version > ? ORDER BY version LIMIT ?",
                  [.int(since), .int(Int64(Self.rowLimit))]) { s in
            out.append(Self.counter(s))
            mark = sqlite3_column_int64(s, 7)
        }
        return (out, mark)
    }

    public func currentCounterMark() throws(StoreError) -> Int64 {
        try meta("counter_version")
    }

    private func meta(_ name: String) throws(StoreError) -> Int64 {
        var value: Int64 = 0
        try query("SELECT value FROM meta WHERE name = ?", [.text(name)]) { s in value = sqlite3_column_int64(s, 0) }
        return value
    }

    // MARK: - Writing

    /// All of `changes` or none of them.
    public func apply(_ changes: [StoreChange]) throws(StoreError) {
        guard !changes.isEmpty else { return }
        try exec("BEGIN IMMEDIATE")
        do {
            for change in changes { try apply(change) }
            try exec("COMMIT")
        } catch {
            _ = sqlite3_exec(db, "ROLLBACK", nil, nil, nil)
            throw error
        }
    }

    private func apply(_ change: StoreChange) throws(StoreError) {
        switch change {
        case .putLock(let l):
            let v = try nextVersion("lock_version")
            try run("""
                INSERT INTO locks(key, cause, reason, created, expires, source, version, removed) VALUES(?, ?, ?, ?, ?, ?, ?, 0)
                ON CONFLICT(key) DO UPDATE SET cause = excluded.cause, reason = excluded.reason, created = excluded.created,
                  expires = excluded.expires, source = excluded.source, version = excluded.version, removed = 0
                """, [.text(l.key), .text(l.cause), .text(l.reason), .real(l.created), l.expires.map { .real($0) } ?? .null, .text(l.source), .int(v)])
        case .removeLock(let key):
            // Only a lock in force leaves a tombstone: removing an unknown key must not grow the feed.
            let v = try nextVersion("lock_version")
            try run("UPDATE locks SET removed = 1, source = ?, version = ?, created = ? WHERE key = ? AND removed = 0",
                    [.text(source), .int(v), .real(Self.now()), .text(key)])
        case .putCounter(let c):
            let v = try nextVersion("counter_version")
            try run("""
                INSERT INTO counters(key, kind, seconds, source, bucket_start, current, previous, version) VALUES(?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT(key, kind, seconds, source) DO UPDATE SET bucket_start = excluded.bucket_start,
                  current = excluded.current, previous = excluded.previous, version = excluded.version
                """, [.text(c.key), .text(c.kind), .int(Int64(c.seconds)), .text(c.source), .real(c.bucketStart), .real(c.current),
                       .real(c.previous), .int(v)])
        case .pruneExpired(let before):
            // Expired locks go without a tombstone: every reader drops them by their own clock anyway.
            try run("DELETE FROM locks WHERE removed = 0 AND expires IS NOT NULL AND expires < ?", [.real(before)])
            try run("DELETE FROM locks WHERE removed = 1 AND created < ?", [.real(before - Self.tombstoneSeconds)])
            try run("DELETE FROM counters WHERE bucket_start + 2 * seconds < ?", [.real(before)])
        }
    }

    private func nextVersion(_ name: String) throws(StoreError) -> Int64 {
        var v: Int64 = 0
        try query("UPDATE meta SET value = value + 1 WHERE name = ? RETURNING value", [.text(name)]) { s in v = sqlite3_column_int64(s, 0) }
        return v
    }

    // MARK: - Opening

    private func checkIntegrity() throws(StoreError) {
        var verdict: [String] = []
        try query("PRAGMA quick_check(5)", []) { s in verdict.append(Self.text(s, 0)) }
        guard verdict == ["ok"] else {
            let detail = String(verdict.joined(separator: "; ").prefix(200))
            throw StoreError(.notADatabase, "\(path) is not a valid SMTPGate state database (\(detail)); move it aside and restart to start afresh")
        }
    }

    private func migrate() throws(StoreError) {
        var version: Int32 = 0
        try query("PRAGMA user_version", []) { s in version = sqlite3_column_int(s, 0) }
        if version > Self.schemaVersion {
            throw StoreError(.newerSchema, "\(path) has state schema version \(version), newer than this SMTPGate's \(Self.schemaVersion); upgrade SMTPGate or point state_store at another file")
        }
        guard version < Self.schemaVersion else { return }
        try exec("BEGIN IMMEDIATE")
        do {
            if version < 1 {
                try exec("""
                    CREATE TABLE IF NOT EXISTS locks(key TEXT PRIMARY KEY, cause TEXT NOT NULL, reason TEXT NOT NULL,
                      created REAL NOT NULL, expires REAL, source TEXT NOT NULL, version INTEGER NOT NULL, removed INTEGER NOT NULL);
                    CREATE INDEX IF NOT EXISTS locks_version ON locks(version);
                    CREATE TABLE IF NOT EXISTS counters(key TEXT NOT NULL, kind TEXT NOT NULL, seconds INTEGER NOT NULL,
                      source TEXT NOT NULL, bucket_start REAL NOT NULL, current REAL NOT NULL, previous REAL NOT NULL,
                      PRIMARY KEY(key, kind, seconds, source));
                    CREATE TABLE IF NOT EXISTS meta(name TEXT PRIMARY KEY, value INTEGER NOT NULL);
                    INSERT OR IGNORE INTO meta(name, value) VALUES('lock_version', 0);
                    """)
            }
            // Version 2: counter rows carry a version too, so proxies sharing the store read each other's counts.
            try exec("""
                ALTER TABLE counters ADD COLUMN version INTEGER NOT NULL DEFAULT 0;
                CREATE INDEX IF NOT EXISTS counters_version ON counters(version);
                INSERT OR IGNORE INTO meta(name, value) VALUES('counter_version', 0);
                PRAGMA user_version = \(Self.schemaVersion);
                COMMIT;
                """)
        } catch {
            _ = sqlite3_exec(db, "ROLLBACK", nil, nil, nil)
            throw error
        }
    }

    private static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    /// Creates a missing file owner-only before SQLite sees it (SQLite gives its -wal and -shm the
    /// database's mode). Returns the owner of an existing file when we are root and it is someone
    /// else's, so the companions SQLite creates can be handed to that owner.
    private static func createIfMissing(_ path: String, dir: String) throws(StoreError) -> (uid_t, gid_t)? {
        var st = stat()
        if stat(path, &st) == 0 {
            guard access(path, R_OK | W_OK) == 0 else {
                throw StoreError(.notWritable, "cannot open the state store \(path): \(errnoText()); run as its owner or fix its permissions")
            }
            return geteuid() == 0 && st.st_uid != 0 ? (st.st_uid, st.st_gid) : nil
        }
        let fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        if fd < 0 {
            if errno == EEXIST { return nil }
            throw StoreError(.notWritable, "cannot create the state store \(path): \(errnoText()); make \(dir) writable for this user or point state_store elsewhere")
        }
        Glibc.close(fd)
        return nil
    }

    /// SQLite does this itself when running as root; doing it again covers companions left by an
    /// earlier run as root that predates the owner's file.
    private static func chownCompanions(_ path: String, to owner: (uid_t, gid_t)) {
        for suffix in ["-wal", "-shm"] {
            var st = stat()
            let p = path + suffix
            if stat(p, &st) == 0, st.st_uid != owner.0 { _ = chown(p, owner.0, owner.1) }
        }
    }

    // MARK: - SQLite

    private enum Value {
        case int(Int64), real(Double), text(String), null
    }

    private func exec(_ sql: String) throws(StoreError) {
        let rc = sqlite3_exec(db, sql, nil, nil, nil)
        guard rc == SQLITE_OK else { throw error(rc, "running \(sql.prefix(40))") }
    }

    private func run(_ sql: String, _ values: [Value]) throws(StoreError) {
        try query(sql, values) { _ in }
    }

    private func query(_ sql: String, _ values: [Value], _ row: (OpaquePointer) -> Void) throws(StoreError) {
        var stmt: OpaquePointer?
        var rc = sqlite3_prepare_v2(db, sql, -1, &stmt, nil)
        guard rc == SQLITE_OK, let stmt else { throw error(rc, "preparing a statement") }
        defer { sqlite3_finalize(stmt) }
        let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)
        for (i, v) in values.enumerated() {
            let at = Int32(i + 1)
            switch v {
            case .int(let n): rc = sqlite3_bind_int64(stmt, at, n)
            case .real(let d): rc = sqlite3_bind_double(stmt, at, d)
            case .text(let s): rc = sqlite3_bind_text(stmt, at, s, -1, transient)
            case .null: rc = sqlite3_bind_null(stmt, at)
            }
            guard rc == SQLITE_OK else { throw error(rc, "binding a value") }
        }
        while true {
            rc = sqlite3_step(stmt)
            if rc == SQLITE_ROW {
                row(stmt)
            } else if rc == SQLITE_DONE {
                return
            } else {
                throw error(rc, "reading or writing it")
            }
        }
    }

    private func error(_ rc: Int32, _ doing: String) -> StoreError {
        let message = db.map { String(cString: sqlite3_errmsg($0)) } ?? String(cString: sqlite3_errstr(rc))
        switch rc & 0xff {
        case SQLITE_NOTADB, SQLITE_CORRUPT:
            return StoreError(.notADatabase, "\(path) is not a valid SMTPGate state database (\(message)); move it aside and restart to start afresh")
        case SQLITE_BUSY, SQLITE_LOCKED:
            return StoreError(.busy, "the state store \(path) stayed locked by another process for over \(Self.busyMilliseconds / 1000) s (\(message)); retrying")
        case SQLITE_READONLY, SQLITE_CANTOPEN, SQLITE_PERM:
            return StoreError(.notWritable, "cannot write the state store \(path) (\(message)); check it and its directory are writable for this user")
        case SQLITE_FULL:
            return StoreError(.full, "the state store \(path) cannot grow: the disk is full (\(message))")
        default:
            return StoreError(.other, "the state store \(path) failed \(doing) (\(message))")
        }
    }

    private static func text(_ s: OpaquePointer, _ col: Int32) -> String {
        guard let p = sqlite3_column_text(s, col) else { return "" }
        return String(cString: p)
    }

    private static func counter(_ s: OpaquePointer) -> StoredCounter {
        StoredCounter(key: text(s, 0), kind: text(s, 1), seconds: Int(sqlite3_column_int64(s, 2)), bucketStart: sqlite3_column_double(s, 3),
                      current: sqlite3_column_double(s, 4), previous: sqlite3_column_double(s, 5), source: text(s, 6))
    }

    private static func lock(_ s: OpaquePointer) -> StoredLock {
        StoredLock(key: text(s, 0), cause: text(s, 1), reason: text(s, 2), created: sqlite3_column_double(s, 3),
                   expires: sqlite3_column_type(s, 4) == SQLITE_NULL ? nil : sqlite3_column_double(s, 4), source: text(s, 5))
    }

    private static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }
}
