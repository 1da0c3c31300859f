#if canImport(Glibc)
import Glibc
#endif
import Logging
import NIOCore
import NIOPosix
import PostgresNIO
import SMTPGateCore

/// The state store on a PostgreSQL server (`state_store postgresql://…`): the same locks, counters and
/// lock feed as the SQLite file, shared by proxies on several hosts. One connection, used from the
/// writer's single thread (never an event loop), so it waits on its futures; every wait is bounded and a
/// connection that does not answer in time is closed. Errors name the server without its password.
public final class PostgresStateStore: StateBackend {
    public static let schemaVersion: Int64 = 2
    public static let rowLimit = SQLiteStateStore.rowLimit
    public static let tombstoneSeconds = SQLiteStateStore.tombstoneSeconds
    /// Connecting and each statement: past this the connection is given up and the writer retries.
    public static let timeoutSeconds: Int64 = 5
    /// Taken by every transaction that allocates lock or counter versions (exclusive) and by the current
    /// marks (shared), so versions become visible in order and a feed never skips one committed late.
    static let versionLockKey: Int64 = 0x534D_5450_4741_5445 // "SMTPGATE"
    /// Serialises schema creation between proxies starting together.
    static let schemaLockKey: Int64 = 0x534D_5450_4741_5446

    /// One event loop for every store in the process: the writer reconnects often while a server is down.
    static let sharedGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)

    public let url: PostgresURL
    public let source: String
    private var connection: PostgresConnection?
    private let logger = Logger(label: "smtpgate.state-store", factory: { _ in SwiftLogNoOpLogHandler() })

    public init(url: PostgresURL, source: String = "admin", group: (any EventLoopGroup)? = nil) throws(StoreError) {
        self.url = url
        self.source = source
        var config: PostgresConnection.Configuration
        if let socket = url.socketPath {
            config = .init(unixSocketPath: socket, username: url.user, password: url.password, database: url.database)
        } else {
            config = .init(host: url.host ?? "", port: url.port, username: url.user, password: url.password,
                           database: url.database, tls: .disable)
        }
        config.options.connectTimeout = .seconds(Self.timeoutSeconds)
        let loop = (group ?? Self.sharedGroup).next()
        do {
            connection = try PostgresConnection.connect(on: loop, configuration: config, id: 1, logger: logger).wait()
        } catch {
            throw Self.failure(error, "connecting to", url)
        }
        do {
            try migrate()
        } catch {
            close()
            throw error
        }
    }

    deinit { close() }

    public func close() {
        if let connection { _ = try? connection.close().wait() }
        connection = nil
    }

    // MARK: - Reading

    public func locks() throws(StoreError) -> [StoredLock] {
        try rows("SELECT key, cause, reason, created, expires, source FROM locks WHERE NOT removed ORDER BY version LIMIT \(Self.rowLimit)")
            .map { r throws(StoreError) in try Self.lock(r) }
    }

    public func counters() throws(StoreError) -> [StoredCounter] {
        try rows("SELECT key, kind, seconds, bucket_start, current, previous, source FROM counters LIMIT \(Self.rowLimit)")
            .map { r throws(StoreError) in try Self.counter(r) }
    }

    public func counterChanges(since: Int64) throws(StoreError) -> (counters: [StoredCounter], mark: Int64) {
        var out: [StoredCounter] = []
        var mark = since
        for r in try rows("SELECT key, kind, seconds, bucket_start, current, previous, source, version FROM counters WHERE version > \(since) ORDER BY version LIMIT \(Self.rowLimit)") {
            out.append(try Self.counter(r))
            mark = try Self.decode { try r[7].decode(Int64.self) }
        }
        return (out, mark)
    }

    public func lockChanges(since: Int64) throws(StoreError) -> (changes: [LockChange], mark: Int64) {
        var changes: [LockChange] = []
        var mark = since
        for r in try rows("SELECT key, cause, reason, created, expires, source, removed, version FROM locks WHERE version > \(since) ORDER BY version LIMIT \(Self.rowLimit)") {
            let removed: Bool = try Self.decode { try r[6].decode(Bool.self) }
            if removed {
                changes.append(.removed(key: try Self.decode { try r[0].decode(String.self) }, source: try Self.decode { try r[5].decode(String.self) }))
            } else {
                changes.append(.put(try Self.lock(r)))
            }
            mark = try Self.decode { try r[7].decode(Int64.self) }
        }
        return (changes, mark)
    }

    public func currentMark() throws(StoreError) -> Int64 {
        try mark("lock_version")
    }

    public func currentCounterMark() throws(StoreError) -> Int64 {
        try mark("counter_version")
    }

    private func mark(_ sequence: String) throws(StoreError) -> Int64 {
        try transaction { () throws(StoreError) -> Int64 in
            try run("SELECT pg_advisory_xact_lock_shared(\(Self.versionLockKey))")
            let r = try rows(PostgresQuery(unsafeSQL: "SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM \(sequence)"))
            return try Self.decode { try r.first?[0].decode(Int64.self) ?? 0 }
        }
    }

    // MARK: - Writing

    public func apply(_ changes: [StoreChange]) throws(StoreError) {
        guard !changes.isEmpty else { return }
        try transaction { () throws(StoreError) in
            if changes.contains(where: { if case .pruneExpired = $0 { return false }; return true }) {
                try run("SELECT pg_advisory_xact_lock(\(Self.versionLockKey))")
            }
            for change in changes { try apply(change) }
        }
    }

    private func apply(_ change: StoreChange) throws(StoreError) {
        switch change {
        case .putLock(let l):
            try run("""
                INSERT INTO locks(key, cause, reason, created, expires, source, version, removed, removed_by)
                VALUES(\(l.key), \(l.cause), \(l.reason), \(l.created), \(l.expires), \(l.source), nextval('lock_version'), false, NULL)
                ON CONFLICT(key) DO UPDATE SET cause = excluded.cause, reason = excluded.reason, created = excluded.created,
                  expires = excluded.expires, source = excluded.source, version = excluded.version, removed = false, removed_by = NULL
                """)
        case .removeLock(let key):
            // Only a lock in force leaves a tombstone: removing an unknown key must not grow the feed. The
            // tombstone's source is who removed it (what the feed reports); removed_by says it again for people.
            try run("""
                UPDATE locks SET removed = true, source = \(source), removed_by = \(source), version = nextval('lock_version'),
                  created = \(Self.now()) WHERE key = \(key) AND NOT removed
                """)
        case .putCounter(let c):
            try run("""
                INSERT INTO counters(key, kind, seconds, source, bucket_start, current, previous, version)
                VALUES(\(c.key), \(c.kind), \(Int64(c.seconds)), \(c.source), \(c.bucketStart), \(c.current), \(c.previous),
                  nextval('counter_version'))
                ON CONFLICT(key, kind, seconds, source) DO UPDATE SET bucket_start = excluded.bucket_start,
                  current = excluded.current, previous = excluded.previous, version = excluded.version
                """)
        case .pruneExpired(let before):
            // Expired locks go without a tombstone: every reader drops them by their own clock anyway.
            try run("DELETE FROM locks WHERE NOT removed AND expires IS NOT NULL AND expires < \(before)")
            try run("DELETE FROM locks WHERE removed AND created < \(before - Self.tombstoneSeconds)")
            try run("DELETE FROM counters WHERE bucket_start + 2 * seconds < \(before)")
        }
    }

    // MARK: - Schema

    private func migrate() throws(StoreError) {
        try transaction { () throws(StoreError) in
            try run("SELECT pg_advisory_xact_lock(\(Self.schemaLockKey))")
            try run("CREATE TABLE IF NOT EXISTS meta(name text PRIMARY KEY, value bigint NOT NULL)")
            let found = try rows("SELECT value FROM meta WHERE name = 'schema_version'")
            let version: Int64 = try Self.decode { try found.first?[0].decode(Int64.self) ?? 0 }
            if version > Self.schemaVersion {
                throw StoreError(.newerSchema, "the state store \(url) has state schema version \(version), newer than this SMTPGate's \(Self.schemaVersion); upgrade SMTPGate or point state_store at another database")
            }
            guard version < Self.schemaVersion else { return }
            if version < 1 { try createVersion1() }
            // Version 2: counter rows carry a version too, so proxies sharing the store read each other's counts.
            try run("ALTER TABLE counters ADD COLUMN IF NOT EXISTS version bigint NOT NULL DEFAULT 0")
            try run("CREATE INDEX IF NOT EXISTS counters_version ON counters(version)")
            try run("CREATE SEQUENCE IF NOT EXISTS counter_version AS bigint")
            try run("""
                INSERT INTO meta(name, value) VALUES('schema_version', \(Self.schemaVersion))
                ON CONFLICT(name) DO UPDATE SET value = excluded.value
                """)
        }
    }

    private func createVersion1() throws(StoreError) {
        try run("""
            CREATE TABLE IF NOT EXISTS locks(key text PRIMARY KEY, cause text NOT NULL, reason text NOT NULL,
              created double precision NOT NULL, expires double precision, source text NOT NULL,
              removed boolean NOT NULL DEFAULT false, removed_by text, version bigint NOT NULL)
            """)
        try run("CREATE INDEX IF NOT EXISTS locks_version ON locks(version)")
        try run("""
            CREATE TABLE IF NOT EXISTS counters(key text NOT NULL, kind text NOT NULL, seconds bigint NOT NULL,
              source text NOT NULL, bucket_start double precision NOT NULL, current double precision NOT NULL,
              previous double precision NOT NULL, PRIMARY KEY(key, kind, seconds, source))
            """)
        try run("CREATE SEQUENCE IF NOT EXISTS lock_version AS bigint")
    }

    // MARK: - PostgreSQL

    private func transaction<T>(_ body: () throws(StoreError) -> T) throws(StoreError) -> T {
        try run("BEGIN")
        do {
            let out = try body()
            try run("COMMIT")
            return out
        } catch {
            if let connection, !connection.isClosed { _ = try? wait(connection.query("ROLLBACK", logger: logger)) }
            throw error
        }
    }

    private func run(_ query: PostgresQuery) throws(StoreError) {
        _ = try rows(query)
    }

    private func rows(_ query: PostgresQuery) throws(StoreError) -> [PostgresRandomAccessRow] {
        guard let connection, !connection.isClosed else {
            throw StoreError(.other, "the state store \(url) lost its connection; reconnecting")
        }
        do {
            return try wait(connection.query(query, logger: logger)).rows.map { $0.makeRandomAccess() }
        } catch {
            throw Self.failure(error, "querying", url)
        }
    }

    /// `future`'s result, or the connection closed (failing the future) when the server does not answer in time.
    private func wait<T>(_ future: EventLoopFuture<T>) throws -> T {
        let connection = self.connection
        let timer = future.eventLoop.scheduleTask(in: .seconds(Self.timeoutSeconds)) {
            if let connection { let closing: EventLoopFuture<Void> = connection.close(); _ = closing }
        }
        defer { timer.cancel() }
        return try future.wait()
    }

    private static func failure(_ error: any Error, _ doing: String, _ url: PostgresURL) -> StoreError {
        let detail: String
        if let e = error as? PSQLError {
            if let message = e.serverInfo?[.message] {
                detail = message + (e.serverInfo?[.sqlState].map { " (SQLSTATE \($0))" } ?? "")
            } else if let under = e.underlying {
                detail = "\(e.code): \(under)"
            } else {
                detail = "\(e.code)"
            }
        } else {
            detail = "\(error)"
        }
        let oneLine = String(detail.map { $0.isNewline ? " " : $0 }.prefix(300))
        return StoreError(.other, "the state store \(url) failed \(doing) the server (\(oneLine))")
    }

    private static func decode<T>(_ body: () throws -> T) throws(StoreError) -> T {
        do {
            return try body()
        } catch {
            throw StoreError(.notADatabase, "the state store's tables hold an unexpected value (\(String("\(error)".prefix(200)))); check the database is SMTPGate's")
        }
    }

    private static func counter(_ r: PostgresRandomAccessRow) throws(StoreError) -> StoredCounter {
        try decode {
            StoredCounter(key: try r[0].decode(String.self), kind: try r[1].decode(String.self), seconds: Int(try r[2].decode(Int64.self)),
                          bucketStart: try r[3].decode(Double.self), current: try r[4].decode(Double.self),
                          previous: try r[5].decode(Double.self), source: try r[6].decode(String.self))
        }
    }

    private static func lock(_ r: PostgresRandomAccessRow) throws(StoreError) -> StoredLock {
        try decode {
            StoredLock(key: try r[0].decode(String.self), cause: try r[1].decode(String.self), reason: try r[2].decode(String.self),
                       created: try r[3].decode(Double.self), expires: try r[4].decode(Double?.self), source: try r[5].decode(String.self))
        }
    }

    private static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }
}
