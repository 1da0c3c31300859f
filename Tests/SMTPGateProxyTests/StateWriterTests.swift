import CSQLite
import Foundation
import NIOConcurrencyHelpers
import Testing
@testable import SMTPGateProxy

/// The write-through against real SQLite files: coalescing, the pending bound, and riding out a store
/// that another process holds locked.
@Suite(.serialized) struct StateWriterTests {
    let dir: String
    let path: String
    let warnings = NIOLockedValueBox<[String]>([])

    init() throws {
        var template = Array("/tmp/smtpgate-writertest.XXXXXX".utf8CString)
        dir = try #require(template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }.map { String(cString: $0) })
        path = "\(dir)/state.db"
    }

    private func cleanup() { try? FileManager.default.removeItem(atPath: dir) }

    private func writer(source: String = "p1", interval: Double = 0.05, maxPending: Int = 100_000) -> StateWriter {
        let path = self.path, warnings = self.warnings
        return StateWriter(open: { () throws(StoreError) -> SQLiteStateStore in try SQLiteStateStore(path: path, source: source) },
                           interval: interval, maxPending: maxPending, warn: { w in warnings.withLockedValue { $0.append(w) } })
    }

    private func contents() throws -> (locks: [StoredLock], counters: [StoredCounter]) {
        let store = try SQLiteStateStore(path: path)
        defer { store.close() }
        return (try store.locks(), try store.counters())
    }

    @Test func manyPutsOfOneKeyLeaveTheLastOne() throws {
        defer { cleanup() }
        let w = writer(interval: 60)
        defer { w.stop() }
        for i in 0..<500 {
            w.submit(.putLock(StateStoreTests.lock("k", reason: "r\(i)")))
            w.submit(.putCounter(StateStoreTests.counter("k", current: Double(i))))
        }
        #expect(w.pending == 2)
        #expect(w.flush(timeout: 10))
        let (locks, counters) = try contents()
        #expect(locks == [StateStoreTests.lock("k", reason: "r499")])
        #expect(counters == [StateStoreTests.counter("k", current: 499)])
    }

    @Test func beyondTheBoundCountersGoBeforeLocks() throws {
        defer { cleanup() }
        let w = writer(interval: 60, maxPending: 4)
        defer { w.stop() }
        w.submit(.putLock(StateStoreTests.lock("l1")))
        w.submit(.putCounter(StateStoreTests.counter("c1", current: 1)))
        w.submit(.putCounter(StateStoreTests.counter("c2", current: 2)))
        w.submit(.putLock(StateStoreTests.lock("l2")))
        w.submit(.putLock(StateStoreTests.lock("l3")))
        w.submit(.putLock(StateStoreTests.lock("l4")))
        #expect(w.dropped == 2)
        #expect(w.pending == 4)
        w.submit(.putLock(StateStoreTests.lock("l5")))
        #expect(w.dropped == 3)
        #expect(w.flush(timeout: 10))
        let (locks, counters) = try contents()
        #expect(locks.map(\.key) == ["l2", "l3", "l4", "l5"])
        #expect(counters.isEmpty)
    }

    @Test func aLockedStoreIsRiddenOutAndCaughtUp() throws {
        defer { cleanup() }
        try SQLiteStateStore(path: path).close()
        var other: OpaquePointer?
        #expect(sqlite3_open(path, &other) == SQLITE_OK)
        #expect(sqlite3_exec(other, "BEGIN EXCLUSIVE", nil, nil, nil) == SQLITE_OK)
        let w = writer(interval: 0.1)
        defer { w.stop() }
        w.submit(.putLock(StateStoreTests.lock("held")))
        #expect(!w.flush(timeout: 3))
        #expect(w.failures > 0)
        #expect(w.pending == 1)
        let warned = warnings.withLockedValue { $0 }
        #expect(warned.count == 1)
        #expect(warned.first?.contains("stayed locked by another process") == true)
        #expect(warned.first?.contains("1 state changes pending") == true)
        // Reading is not blocked by the writer lock in WAL mode: the lock must really be absent.
        #expect(try contents().locks.isEmpty)
        #expect(sqlite3_exec(other, "COMMIT", nil, nil, nil) == SQLITE_OK)
        sqlite3_close(other)
        #expect(w.flush(timeout: 10))
        #expect(try contents().locks == [StateStoreTests.lock("held")])
    }

    @Test func otherWritersChangesAreHandedOverAndOwnOnesAreNot() throws {
        defer { cleanup() }
        let seen = NIOLockedValueBox<[LockChange]>([])
        let w = writer(source: "p1", interval: 0.05)
        defer { w.stop() }
        w.onLockChanges = { c in seen.withLockedValue { $0 += c } }
        w.submit(.putLock(StateStoreTests.lock("mine")))
        #expect(w.flush(timeout: 10))
        let admin = try SQLiteStateStore(path: path, source: "admin")
        try admin.apply([.putLock(StateStoreTests.lock("theirs", source: "admin")), .removeLock(key: "mine")])
        admin.close()
        let deadline = Date().addingTimeInterval(5)
        while seen.withLockedValue({ $0.count }) < 2, Date() < deadline { usleep(20_000) }
        usleep(200_000)
        #expect(seen.withLockedValue { $0 } == [.put(StateStoreTests.lock("theirs", source: "admin")), .removed(key: "mine", source: "admin")])
    }
}
