import CSQLite
import Foundation
import Testing
@testable import SMTPGateProxy

/// The state store against real SQLite files in a temporary directory.
@Suite(.serialized) struct StateStoreTests {
    let dir: String

    init() throws {
        var template = Array("/tmp/smtpgate-storetest.XXXXXX".utf8CString)
        dir = try #require(template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }.map { String(cString: $0) })
    }

    private func cleanup() { try? FileManager.default.removeItem(atPath: dir) }

    static func lock(_ key: String, reason: String = "too many errors", expires: Double? = 2_000, source: String = "p1") -> StoredLock {
        StoredLock(key: key, cause: "errors", reason: reason, created: 1_000, expires: expires, source: source)
    }

    static func counter(_ key: String, current: Double, source: String = "p1") -> StoredCounter {
        StoredCounter(key: key, kind: "connections", seconds: 60, bucketStart: 960, current: current, previous: 2, source: source)
    }

    /// Why opening `path` fails, or nil when it opens.
    private func openError(_ path: String) -> StoreError? {
        do throws(StoreError) {
            try SQLiteStateStore(path: path).close()
        } catch {
            return error
        }
        return nil
    }

    @Test func locksAndCountersSurviveReopening() throws {
        defer { cleanup() }
        let path = "\(dir)/state.db"
        let a = Self.lock("192.0.2.1"), b = Self.lock("192.0.2.2", expires: nil)
        let c = Self.counter("192.0.2.1", current: 7)
        do {
            let store = try SQLiteStateStore(path: path)
            try store.apply([.putLock(a), .putLock(b), .putCounter(c)])
            #expect(try store.locks() == [a, b])
            #expect(try store.counters() == [c])
            store.close()
        }
        let again = try SQLiteStateStore(path: path)
        defer { again.close() }
        #expect(try again.locks() == [a, b])
        #expect(try again.counters() == [c])
    }

    @Test func upsertReplacesByKeyAndCountersBySource() throws {
        defer { cleanup() }
        let store = try SQLiteStateStore(path: "\(dir)/state.db")
        defer { store.close() }
        try store.apply([.putLock(Self.lock("k", reason: "first")), .putCounter(Self.counter("k", current: 1)),
                         .putCounter(Self.counter("k", current: 5, source: "p2"))])
        try store.apply([.putLock(Self.lock("k", reason: "second")), .putCounter(Self.counter("k", current: 3))])
        #expect(try store.locks() == [Self.lock("k", reason: "second")])
        #expect(try store.counters().sorted { $0.source < $1.source } == [Self.counter("k", current: 3), Self.counter("k", current: 5, source: "p2")])
    }

    @Test func theCounterFeedGivesEachRowOnceWithItsNewestValue() throws {
        defer { cleanup() }
        let path = "\(dir)/state.db"
        let first = try SQLiteStateStore(path: path, source: "p1")
        let second = try SQLiteStateStore(path: path, source: "p2")
        defer { first.close(); second.close() }
        try Self.checkCounterFeed(from: first, to: second)
    }

    /// The counter feed of either store: every row written after a mark, each once with its newest value,
    /// in write order, and no lock versions taken.
    static func checkCounterFeed(from first: any StateBackend, to second: any StateBackend) throws {
        let start = try second.currentCounterMark()
        try first.apply([.putCounter(counter("a", current: 1)), .putCounter(counter("b", current: 2))])
        try first.apply([.putCounter(counter("a", current: 4))])
        let (rows, mark) = try second.counterChanges(since: start)
        #expect(rows == [counter("b", current: 2), counter("a", current: 4)])
        #expect(mark == start + 3)
        #expect(try second.currentCounterMark() == mark)
        #expect(try second.counterChanges(since: mark).counters.isEmpty)
        #expect(try second.currentMark() == 0, "counters take no lock versions")
    }

    /// A file written by the first schema (no counter versions) is upgraded in place, its rows kept.
    @Test func aVersionOneFileIsUpgraded() throws {
        defer { cleanup() }
        let path = "\(dir)/state.db"
        var db: OpaquePointer?
        #expect(sqlite3_open(path, &db) == SQLITE_OK)
        let v1 = """
            CREATE TABLE locks(key TEXT PRIMARY KEY, cause TEXT NOT NULL, reason TEXT NOT NULL, created REAL NOT NULL, expires REAL,
              source TEXT NOT NULL, version INTEGER NOT NULL, removed INTEGER NOT NULL);
            CREATE TABLE counters(key TEXT NOT NULL, kind TEXT NOT NULL, seconds INTEGER NOT NULL, source TEXT NOT NULL,
              bucket_start REAL NOT NULL, current REAL NOT NULL, previous REAL NOT NULL, PRIMARY KEY(key, kind, seconds, source));
            CREATE TABLE meta(name TEXT PRIMARY KEY, value INTEGER NOT NULL);
            INSERT INTO meta VALUES('lock_version', 1);
            INSERT INTO locks VALUES('192.0.2.9', 'virus', 'Eicar', 1000, NULL, 'p1', 1, 0);
            INSERT INTO counters VALUES('192.0.2.9', 'messages', 3600, 'p1', 7200, 3, 1);
            PRAGMA user_version = 1;
            """
        #expect(sqlite3_exec(db, v1, nil, nil, nil) == SQLITE_OK)
        sqlite3_close(db)
        let store = try SQLiteStateStore(path: path, source: "p2")
        defer { store.close() }
        #expect(try store.locks().map(\.key) == ["192.0.2.9"])
        #expect(try store.counters().map(\.current) == [3])
        #expect(try store.currentCounterMark() == 0)
        try store.apply([.putCounter(Self.counter("192.0.2.9", current: 5, source: "p2"))])
        #expect(try store.counterChanges(since: 0).counters.map(\.source) == ["p2"])
    }

    @Test func aSecondStoreSeesTheFirstsChangesAndTombstones() throws {
        defer { cleanup() }
        let path = "\(dir)/state.db"
        let first = try SQLiteStateStore(path: path, source: "p1")
        let second = try SQLiteStateStore(path: path, source: "admin")
        defer { first.close(); second.close() }
        let start = try second.currentMark()
        try first.apply([.putLock(Self.lock("a")), .putLock(Self.lock("b"))])
        try first.apply([.removeLock(key: "a")])
        let (changes, mark) = try second.lockChanges(since: start)
        #expect(changes == [.put(Self.lock("b")), .removed(key: "a", source: "p1")])
        #expect(mark == 3)
        #expect(try second.locks() == [Self.lock("b")])
        #expect(try second.lockChanges(since: mark).changes.isEmpty)
        try second.apply([.removeLock(key: "b")])
        #expect(try first.lockChanges(since: mark).changes == [.removed(key: "b", source: "admin")])
        // Tombstones outlive a prune at their removal time and go a retention period later.
        let now = Date().timeIntervalSince1970
        try first.apply([.pruneExpired(before: now)])
        #expect(try first.lockChanges(since: 0).changes.count == 2)
        try first.apply([.pruneExpired(before: now + SQLiteStateStore.tombstoneSeconds + 60)])
        #expect(try first.lockChanges(since: 0).changes.isEmpty)
        #expect(try first.currentMark() == 4)
    }

    @Test func pruneDropsExpiredLocksAndStaleCounters() throws {
        defer { cleanup() }
        let store = try SQLiteStateStore(path: "\(dir)/state.db")
        defer { store.close() }
        try store.apply([.putLock(Self.lock("old", expires: 1_500)), .putLock(Self.lock("forever", expires: nil)),
                         .putLock(Self.lock("later", expires: 3_000)), .putCounter(Self.counter("c", current: 1))])
        try store.apply([.pruneExpired(before: 2_500)])
        #expect(try store.locks().map(\.key) == ["forever", "later"])
        #expect(try store.counters().isEmpty)
    }

    @Test func aNewFileAndItsCompanionsAreOwnerOnly() throws {
        defer { cleanup() }
        let path = "\(dir)/state.db"
        let old = umask(0o022)
        defer { umask(old) }
        let store = try SQLiteStateStore(path: path)
        defer { store.close() }
        try store.apply([.putLock(Self.lock("a"))])
        for p in [path, path + "-wal", path + "-shm"] {
            var st = stat()
            #expect(stat(p, &st) == 0, "\(p) exists")
            #expect(st.st_mode & 0o777 == 0o600, "\(p) mode")
        }
    }

    /// An admin command run as root on the daemon's file must leave companions the daemon can open.
    @Test(.enabled(if: geteuid() == 0)) func rootHandsCompanionsToTheFilesOwner() throws {
        defer { cleanup() }
        let path = "\(dir)/state.db"
        try SQLiteStateStore(path: path).close()
        #expect(chown(path, 65534, 65534) == 0)
        let store = try SQLiteStateStore(path: path)
        defer { store.close() }
        try store.apply([.putLock(Self.lock("a"))])
        for p in [path + "-wal", path + "-shm"] {
            var st = stat()
            #expect(stat(p, &st) == 0, "\(p) exists")
            #expect(st.st_uid == 65534 && st.st_gid == 65534, "\(p) owner")
        }
    }

    @Test func garbageIsNotAStateDatabase() throws {
        defer { cleanup() }
        let path = "\(dir)/state.db"
        try Data((0..<8192).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }).write(to: URL(fileURLWithPath: path))
        let error = try #require(openError(path))
        #expect(error.kind == .notADatabase)
        #expect(error.description.hasPrefix("\(path) is not a valid SMTPGate state database ("))
    }

    @Test func aMissingDirectoryIsNamed() throws {
        defer { cleanup() }
        let error = try #require(openError("\(dir)/nope/state.db"))
        #expect(error.kind == .missingDirectory)
        #expect(error.description == "cannot open the state store \(dir)/nope/state.db: the directory \(dir)/nope does not exist; create it or point state_store elsewhere")
    }

    @Test func aNewerSchemaIsRefused() throws {
        defer { cleanup() }
        let path = "\(dir)/state.db"
        try SQLiteStateStore(path: path).close()
        var db: OpaquePointer?
        #expect(sqlite3_open(path, &db) == SQLITE_OK)
        #expect(sqlite3_exec(db, "PRAGMA user_version = 9", nil, nil, nil) == SQLITE_OK)
        sqlite3_close(db)
        let error = try #require(openError(path))
        #expect(error.kind == .newerSchema)
        #expect(error.description.contains("has state schema version 9, newer than this SMTPGate's 2"))
    }

    @Test func readsAreBounded() throws {
        defer { cleanup() }
        let store = try SQLiteStateStore(path: "\(dir)/state.db")
        defer { store.close() }
        let n = SQLiteStateStore.rowLimit + 5
        try store.apply((0..<n).map { .putLock(Self.lock("k\($0)")) })
        #expect(try store.locks().count == SQLiteStateStore.rowLimit)
        let (first, mark) = try store.lockChanges(since: 0)
        #expect(first.count == SQLiteStateStore.rowLimit)
        #expect(try store.lockChanges(since: mark).changes.count == 5)
    }
}
