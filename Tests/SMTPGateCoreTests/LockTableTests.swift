import Testing
@testable import SMTPGateCore

@Suite struct LockTableTests {
    func key(_ s: String) -> ClientKey { try! ClientKey(parsing: s, ipv6Prefix: 64) }
    let none = AllowList([])

    @Test func lockThenAlreadyLockedWithoutExtending() {
        var table = LockTable(duration: 600, exempt: none)
        guard case .locked(let lock) = table.lock(key("10.0.0.5"), cause: .virus, reason: "Eicar-Test", now: 1000) else {
            Issue.record("expected a new lock")
            return
        }
        #expect(lock.created == 1000)
        #expect(lock.expires == 1600)
        #expect(lock.reason == "Eicar-Test")
        #expect(table.lock(key("10.0.0.5"), cause: .spam, reason: "again", now: 1500) == .alreadyLocked(lock))
        #expect(table.active(key("10.0.0.5"), now: 1599)?.expires == 1600)
        #expect(table.active(key("10.0.0.5"), now: 1600) == nil)
        #expect(table.active(key("10.0.0.6"), now: 1000) == nil)
        #expect(table.count == 1)
    }

    @Test func anExpiredLockIsReplacedByANewOne() {
        var table = LockTable(duration: 60, exempt: none)
        _ = table.lock(key("10.0.0.5"), cause: .virus, reason: "one", now: 0)
        guard case .locked(let second) = table.lock(key("10.0.0.5"), cause: .spam, reason: "two", now: 60) else {
            Issue.record("expected a new lock once the old one expired")
            return
        }
        #expect(second.cause == .spam)
        #expect(second.expires == 120)
        #expect(table.count == 1)
        // The first lock's heap entry must not remove the second lock.
        #expect(table.expire(now: 100, limit: 10).isEmpty)
        #expect(table.active(key("10.0.0.5"), now: 100) == second)
    }

    @Test func exemptAndDisabled() throws {
        var table = LockTable(duration: 600, exempt: AllowList([try CIDR(parsing: "10.0.0.0/24")]))
        #expect(table.lock(key("bob@10.0.0.5"), cause: .virus, reason: "", now: 0) == .exempt)
        #expect(table.count == 0)
        var off = LockTable(duration: 0, exempt: none)
        #expect(off.lock(key("10.0.0.5"), cause: .virus, reason: "", now: 0) == .disabled)
        #expect(off.active(key("10.0.0.5"), now: 0) == nil)
    }

    @Test func foreverUntilRemoved() {
        var table = LockTable(duration: -1, exempt: none)
        guard case .locked(let lock) = table.lock(key("10.0.0.5"), cause: .maxhost, reason: "", now: 0) else {
            Issue.record("expected a lock")
            return
        }
        #expect(lock.expires == nil)
        #expect(lock.remaining(now: 1e12) == nil)
        #expect(table.active(key("10.0.0.5"), now: 1e12) == lock)
        #expect(table.expire(now: 1e12, limit: 100).isEmpty)
        #expect(table.remove(key("10.0.0.5")) == lock)
        #expect(table.remove(key("10.0.0.5")) == nil)
        #expect(table.active(key("10.0.0.5"), now: 1) == nil)
    }

    @Test func expireIsBoundedAndOldestFirst() {
        var table = LockTable(duration: 100, exempt: none)
        for i in 0..<10 { _ = table.lock(key("10.0.0.\(i)"), cause: .spam, reason: "", now: Double(10 - i)) }
        #expect(table.expire(now: 100, limit: 10).isEmpty)  // the newest expires at 101
        let first = table.expire(now: 1000, limit: 3)
        #expect(first.map(\.key.description) == ["10.0.0.9", "10.0.0.8", "10.0.0.7"])
        #expect(table.count == 7)
        #expect(table.expire(now: 108, limit: 100).map(\.key.description) == ["10.0.0.6", "10.0.0.5", "10.0.0.4", "10.0.0.3", "10.0.0.2"])
        #expect(table.all(now: 108).map(\.key.description) == ["10.0.0.0", "10.0.0.1"])
        #expect(table.expire(now: 1000, limit: 0).isEmpty)
        #expect(table.count == 2)
    }

    @Test func removedLocksLeaveNoStaleExpiry() {
        var table = LockTable(duration: 10, exempt: none)
        for round in 0..<50 {
            _ = table.lock(key("10.0.0.1"), cause: .spam, reason: "", now: Double(round))
            _ = table.remove(key("10.0.0.1"))
        }
        _ = table.lock(key("10.0.0.1"), cause: .spam, reason: "", now: 1000)
        #expect(table.expire(now: 1009, limit: 1000).isEmpty)
        #expect(table.expire(now: 1010, limit: 1000).map(\.created) == [1000])
    }

    @Test func capacityIsRespected() {
        var table = LockTable(duration: 100, exempt: none, capacity: 2)
        _ = table.lock(key("10.0.0.1"), cause: .spam, reason: "", now: 0)
        _ = table.lock(key("10.0.0.2"), cause: .spam, reason: "", now: 50)
        #expect(table.lock(key("10.0.0.3"), cause: .spam, reason: "", now: 60) == .full)
        let added = table.add(ClientLock(key: key("10.0.0.4"), cause: .admin, reason: "", created: 60, expires: nil))
        #expect(!added)
        #expect(table.count == 2)
        // Once a lock has expired, a new client takes its place.
        guard case .locked = table.lock(key("10.0.0.3"), cause: .spam, reason: "", now: 100) else {
            Issue.record("expected room after expiry")
            return
        }
        #expect(table.active(key("10.0.0.1"), now: 100) == nil)
        #expect(table.count == 2)
        // Replacing a client's lock needs no room.
        let replaced = table.add(ClientLock(key: key("10.0.0.2"), cause: .admin, reason: "by hand", created: 100, expires: nil))
        #expect(replaced)
        #expect(table.active(key("10.0.0.2"), now: 1e9)?.cause == .admin)
    }

    @Test func addTakesALockAsItIs() throws {
        var table = LockTable(duration: 0, exempt: AllowList([try CIDR(parsing: "10.0.0.0/8")]))
        let lock = ClientLock(key: key("10.0.0.5"), cause: .imported, reason: "from /var/spool/smtp-gated/lock", created: 5, expires: 50)
        let added = table.add(lock)
        #expect(added)
        #expect(table.active(key("10.0.0.5"), now: 49) == lock)
        #expect(table.expire(now: 50, limit: 5) == [lock])
    }

    @Test func manyLocksStayFindable() {
        var table = LockTable(duration: 100, exempt: none)
        for i in 0..<20_000 {
            _ = table.lock(ClientKey(address: [10, UInt8(i >> 16 & 0xff), UInt8(i >> 8 & 0xff), UInt8(i & 0xff)], ipv6Prefix: 64),
                           cause: .spam, reason: "", now: 0)
        }
        #expect(table.count == 20_000)
        #expect(table.active(ClientKey(address: [10, 0, 78, 31], ipv6Prefix: 64), now: 1)?.key.description == "10.0.78.31")
    }

    @Test func reasonIsBoundedAndPrintable() {
        let lock = ClientLock(key: key("10.0.0.5"), cause: .virus, reason: "Win.Test\0\r\n\u{1b}[2J\u{85}é" + String(repeating: "x", count: 500),
                        created: 0, expires: 10)
        #expect(lock.reason.hasPrefix("Win.Test????[2J?é"))
        #expect(lock.reason.utf8.count == 200)
        #expect(lock.reason.unicodeScalars.allSatisfy { $0.value >= 0x20 && !(0x7f..<0xa0).contains($0.value) })
        let multibyte = ClientLock(key: key("10.0.0.5"), cause: .virus, reason: String(repeating: "é", count: 150), created: 0, expires: nil)
        #expect(multibyte.reason == String(repeating: "é", count: 100))
    }

    @Test func remainingCountsDown() {
        let lock = ClientLock(key: key("10.0.0.5"), cause: .virus, reason: "", created: 0, expires: 100)
        #expect(lock.remaining(now: 40) == 60)
        #expect(lock.remaining(now: 400) == 0)
        #expect(lock.isActive(now: 99.9))
        #expect(!lock.isActive(now: 100))
    }

    /// A lock kept from a smaller lock_ipv6_prefix (or made for a whole network) covers every key in it,
    /// and stops covering once removed or expired.
    @Test func aShorterIPv6PrefixLockCoversTheKeysInside() throws {
        var table = LockTable(duration: 600, exempt: none)
        let wide = try ClientKey(stored: "2001:db8:1::/48", ipv6Prefix: 64)
        #expect(wide.description == "2001:db8:1::/48", "a shorter stored prefix is kept")
        table.add(ClientLock(key: wide, cause: .admin, reason: "whole site", created: 0, expires: 100))
        #expect(table.active(key("2001:db8:1:77::5"), now: 1)?.reason == "whole site")
        #expect(table.active(try ClientKey(parsing: "bob@2001:db8:1:77::5", ipv6Prefix: 64), now: 1) == nil,
                "an ident key is covered through its address key (AbuseControl asks for both)")
        #expect(table.active(key("2001:db8:2::5"), now: 1) == nil)
        #expect(table.active(key("10.0.0.5"), now: 1) == nil)
        #expect(table.expire(now: 100, limit: 10).count == 1)
        #expect(table.active(key("2001:db8:1:77::5"), now: 1) == nil, "expired: no longer covers")
        table.add(ClientLock(key: wide, cause: .admin, reason: "again", created: 0, expires: nil))
        #expect(table.remove(wide) != nil)
        #expect(table.active(key("2001:db8:1:77::5"), now: 1) == nil, "removed: no longer covers")
    }

    @Test(arguments: [("2001:db8:1:2::/64", 48, "2001:db8:1::/48"), ("2001:db8:1::/48", 64, "2001:db8:1::/48"),
                      ("bob@2001:db8:1:2:3::/80", 64, "bob@2001:db8:1:2::/64"), ("10.0.0.5", 64, "10.0.0.5")])
    func storedKeysWidenToTheConfiguredPrefixOrKeepAShorterOne(_ text: String, _ prefix: Int, _ expected: String) throws {
        #expect(try ClientKey(stored: text, ipv6Prefix: prefix).description == expected)
    }

    @Test(arguments: ["2001:db8::/0", "2001:db8::/129", "2001:db8::1/48", "2001:db8::/", "2001:db8::/+48", "10.0.0.5/32",
                      "2001:db8::/0048", "x/48"])
    func hostileStoredKeysAreRefused(_ text: String) {
        #expect(throws: ClientKeyError.self) { try ClientKey(stored: text, ipv6Prefix: 64) }
    }
}
