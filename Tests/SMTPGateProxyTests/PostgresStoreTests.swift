import Foundation
import NIOConcurrencyHelpers
import SMTPGateCore
import Testing
@testable import SMTPGateProxy

/// The PostgreSQL state store against a real throw-away server (see PostgresTestServer): round trips,
/// two proxies sharing locks through the feed, tombstones, and the writer riding out the server's absence.
@Suite(.serialized) struct PostgresStoreTests {
    let server: PostgresTestServer

    init() throws {
        server = try PostgresTestServer()
    }

    private func open(_ source: String = "p1") throws -> PostgresStateStore {
        try PostgresStateStore(url: server.url, source: source)
    }

    @Test func locksAndCountersSurviveReconnecting() throws {
        defer { server.destroy() }
        let a = StateStoreTests.lock("192.0.2.1"), b = StateStoreTests.lock("192.0.2.2", expires: nil)
        let c = StateStoreTests.counter("192.0.2.1", current: 7)
        do {
            let store = try open()
            try store.apply([.putLock(a), .putLock(b), .putCounter(c)])
            #expect(try store.locks() == [a, b])
            #expect(try store.counters() == [c])
            store.close()
        }
        let again = try open()
        defer { again.close() }
        #expect(try again.locks() == [a, b])
        #expect(try again.counters() == [c])
        // Upserts replace by key, counters by source.
        try again.apply([.putLock(StateStoreTests.lock("192.0.2.1", reason: "second")),
                         .putCounter(StateStoreTests.counter("192.0.2.1", current: 3)),
                         .putCounter(StateStoreTests.counter("192.0.2.1", current: 5, source: "p2"))])
        #expect(try again.locks() == [b, StateStoreTests.lock("192.0.2.1", reason: "second")])
        #expect(try again.counters().sorted { $0.source < $1.source }
            == [StateStoreTests.counter("192.0.2.1", current: 3), StateStoreTests.counter("192.0.2.1", current: 5, source: "p2")])
    }

    @Test func aSecondProxyReadsTheFirstsCounterRows() throws {
        defer { server.destroy() }
        let first = try open("p1"), second = try open("p2")
        defer { first.close(); second.close() }
        try StateStoreTests.checkCounterFeed(from: first, to: second)
    }

    @Test func aSecondProxySeesTheFirstsLocksAndTombstones() throws {
        defer { server.destroy() }
        let first = try open("p1"), second = try open("p2")
        defer { first.close(); second.close() }
        let start = try second.currentMark()
        try first.apply([.putLock(StateStoreTests.lock("a")), .putLock(StateStoreTests.lock("b"))])
        try first.apply([.removeLock(key: "a"), .removeLock(key: "never-locked")])
        let (changes, mark) = try second.lockChanges(since: start)
        #expect(changes == [.put(StateStoreTests.lock("b")), .removed(key: "a", source: "p1")])
        #expect(mark == 3, "removing an unknown key takes no version")
        #expect(try second.currentMark() == mark)
        #expect(try second.locks() == [StateStoreTests.lock("b")])
        #expect(try second.lockChanges(since: mark).changes.isEmpty)
        try second.apply([.removeLock(key: "b")])
        #expect(try first.lockChanges(since: mark).changes == [.removed(key: "b", source: "p2")])
        // Tombstones outlive a prune at their removal time and go a retention period later.
        let now = Date().timeIntervalSince1970
        try first.apply([.pruneExpired(before: now)])
        #expect(try first.lockChanges(since: 0).changes.count == 2)
        try first.apply([.pruneExpired(before: now + PostgresStateStore.tombstoneSeconds + 60)])
        #expect(try first.lockChanges(since: 0).changes.isEmpty)
        #expect(try first.currentMark() == 4, "the mark never goes back when tombstones go")
    }

    @Test func pruneDropsExpiredLocksAndStaleCounters() throws {
        defer { server.destroy() }
        let store = try open()
        defer { store.close() }
        try store.apply([.putLock(StateStoreTests.lock("old", expires: 1_500)), .putLock(StateStoreTests.lock("forever", expires: nil)),
                         .putLock(StateStoreTests.lock("later", expires: 3_000)), .putCounter(StateStoreTests.counter("c", current: 1))])
        try store.apply([.pruneExpired(before: 2_500)])
        #expect(try store.locks().map(\.key) == ["forever", "later"])
        #expect(try store.counters().isEmpty)
    }

    @Test func aFailedBatchLeavesNothing() throws {
        defer { server.destroy() }
        let store = try open()
        defer { store.close() }
        // A NUL cannot be stored in a PostgreSQL text: the second change fails, so the first must not stay.
        #expect(throws: StoreError.self) {
            try store.apply([.putLock(StateStoreTests.lock("good")), .putLock(StateStoreTests.lock("bad\u{0}key"))])
        }
        let again = try open()
        defer { again.close() }
        #expect(try again.locks().isEmpty)
    }

    @Test func aNewerSchemaIsRefused() throws {
        defer { server.destroy() }
        try open().close()
        try server.psql("UPDATE meta SET value = 9 WHERE name = 'schema_version'")
        #expect {
            try open().close()
        } throws: { e in
            guard let e = e as? StoreError else { return false }
            return e.kind == .newerSchema && e.description.contains("has state schema version 9, newer than this SMTPGate's 2")
        }
    }

    @Test func connectionErrorsNameTheServerButNotThePassword() throws {
        defer { server.destroy() }
        let url = try PostgresURL.parse("postgresql://smtpgate:sekrit@127.0.0.1:1/smtpgate")
        #expect {
            _ = try PostgresStateStore(url: url)
        } throws: { e in
            let text = "\(e)"
            return e is StoreError && text.contains("postgresql://smtpgate:***@127.0.0.1:1/smtpgate") && !text.contains("sekrit")
                && text.contains("connecting to")
        }
        let missing = try PostgresURL.parse("postgresql:///smtpgate?host=\(server.dir)/nope&user=smtpgate")
        #expect(throws: StoreError.self) { _ = try PostgresStateStore(url: missing) }
    }

    /// The server goes away under a writer: mail would go on from memory, the writer warns and counts
    /// failures, and once the server is back what was submitted meanwhile arrives.
    @Test func theWriterRidesOutAStoppedServerAndCatchesUp() throws {
        defer { server.destroy() }
        let url = server.url
        let warnings = NIOLockedValueBox<[String]>([])
        let w = StateWriter(open: { () throws(StoreError) -> any StateBackend in try PostgresStateStore(url: url, source: "p1") },
                            interval: 0.1, warn: { m in warnings.withLockedValue { $0.append(m) } })
        defer { w.stop() }
        w.submit(.putLock(StateStoreTests.lock("before")))
        #expect(w.flush(timeout: 10))
        #expect(w.failures == 0)
        try server.stop()
        w.submit(.putLock(StateStoreTests.lock("during")))
        w.submit(.putCounter(StateStoreTests.counter("during", current: 4)))
        #expect(!w.flush(timeout: 2))
        #expect(w.failures > 0)
        #expect(w.pending == 2)
        let warned = warnings.withLockedValue { $0 }
        #expect(warned.count == 1, "one warning a minute at most")
        #expect(warned.first?.contains("the state store \(url)") == true)
        // The first failure may be the poll right after the stop, before the two changes came.
        #expect(warned.first?.contains("state changes pending, retrying") == true)
        try server.start()
        #expect(w.flush(timeout: 10))
        let store = try open("check")
        defer { store.close() }
        #expect(try store.locks() == [StateStoreTests.lock("before"), StateStoreTests.lock("during")])
        #expect(try store.counters() == [StateStoreTests.counter("during", current: 4)])
    }

    /// Two writers (two proxies) on one server: a lock and a counter row one of them writes reach the
    /// other's handlers, and never its own.
    @Test func aLockAndACounterWrittenByOneWriterReachTheOther() throws {
        defer { server.destroy() }
        let url = server.url
        let seen = NIOLockedValueBox<[LockChange]>([])
        let rows = NIOLockedValueBox<[StoredCounter]>([])
        let echoed = NIOLockedValueBox<Int>(0)
        func writer(_ source: String) -> StateWriter {
            StateWriter(open: { () throws(StoreError) -> any StateBackend in try PostgresStateStore(url: url, source: source) },
                        interval: 0.1, warn: { _ in })
        }
        let a = writer("proxy-a"), b = writer("proxy-b")
        defer { a.stop(); b.stop() }
        b.onLockChanges = { c in seen.withLockedValue { $0 += c } }
        b.onCounterChanges = { c in rows.withLockedValue { $0 += c } }
        a.onLockChanges = { c in echoed.withLockedValue { $0 += c.count } }
        a.onCounterChanges = { c in echoed.withLockedValue { $0 += c.count } }
        #expect(b.flush(timeout: 5))
        usleep(300_000) // b has read its starting mark
        let lock = StateStoreTests.lock("198.51.100.7", source: "proxy-a")
        let counter = StateStoreTests.counter("198.51.100.7", current: 6, source: "proxy-a")
        a.submit(.putLock(lock))
        a.submit(.putCounter(counter))
        #expect(a.flush(timeout: 5))
        let deadline = Date().addingTimeInterval(3)
        while seen.withLockedValue({ $0.isEmpty }) || rows.withLockedValue({ $0.isEmpty }), Date() < deadline { usleep(20_000) }
        #expect(seen.withLockedValue { $0 } == [.put(lock)])
        #expect(rows.withLockedValue { $0 } == [counter])
        usleep(300_000)
        #expect(echoed.withLockedValue { $0 } == 0, "a writer's own rows are not handed back to it")
    }

    /// A daemon that started while the server was down reads the feeds from the beginning once it
    /// answers: locks and counts already on the server arrive.
    @Test func aWriterStartedAtTheBeginningReadsWhatWasAlreadyThere() throws {
        defer { server.destroy() }
        let url = server.url
        let earlier = try open("proxy-a")
        let lock = StateStoreTests.lock("198.51.100.8", source: "proxy-a")
        try earlier.apply([.putLock(lock), .putCounter(StateStoreTests.counter("198.51.100.8", current: 2, source: "proxy-a"))])
        earlier.close()
        let seen = NIOLockedValueBox<([LockChange], [StoredCounter])>(([], []))
        let w = StateWriter(open: { () throws(StoreError) -> any StateBackend in try PostgresStateStore(url: url, source: "proxy-b") },
                            marks: .beginning, interval: 0.1, warn: { _ in })
        defer { w.stop() }
        w.onLockChanges = { c in seen.withLockedValue { $0.0 += c } }
        w.onCounterChanges = { c in seen.withLockedValue { $0.1 += c } }
        let deadline = Date().addingTimeInterval(3)
        while seen.withLockedValue({ $0.0.isEmpty || $0.1.isEmpty }), Date() < deadline { usleep(20_000) }
        #expect(seen.withLockedValue { $0.0 } == [.put(lock)])
        #expect(seen.withLockedValue { $0.1.map(\.current) } == [2])
    }
}
