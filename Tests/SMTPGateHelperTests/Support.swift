import NIOConcurrencyHelpers
import SMTPGateCore
@testable import SMTPGateHelper

/// A conntrack stand-in: seen tuple → original tuple.
struct FakeLookup: ConnectionLookup {
    var table: [ConnectionTuple: ConnectionTuple] = [:]
    var failing = false

    func lookup(_ seen: ConnectionTuple) -> LookupResult {
        if failing { return .error("fake failure") }
        return table[seen].map { .found($0) } ?? .notFound
    }
}

/// A lookup that waits until released, counting how many started.
final class GatedLookup: ConnectionLookup, @unchecked Sendable {
    private let condition = ConditionLock(value: 0)
    let started = NIOLockedValueBox(0)

    func lookup(_ seen: ConnectionTuple) -> LookupResult {
        started.withLockedValue { $0 += 1 }
        condition.lock(whenValue: 1)
        condition.unlock()
        return .notFound
    }

    func release() {
        condition.lock()
        condition.unlock(withValue: 1)
    }
}

final class RecordLog: @unchecked Sendable {
    let records = NIOLockedValueBox<[LogRecord]>([])
    var emit: HelperLogEmitter { { [records] r in records.withLockedValue { $0.append(r) } } }
    var all: [LogRecord] { records.withLockedValue { $0 } }
    func events(_ name: String) -> [LogRecord] { all.filter { $0.event == name } }
}

enum Fixture {
    static let key = HelperKey(fileContents: Array("k3y-for-the-helper-tests\n".utf8))!
    static let otherKey = HelperKey(fileContents: Array("another-key-entirely".utf8))!
    static let now: UInt64 = 1_800_000_000

    static func ep(_ a: String, _ p: UInt16) -> HelperEndpoint {
        HelperEndpoint(addressBytes: AddressBytes.parse(a)!, port: p)!
    }

    static let router4 = ep("10.77.2.1", 40000)
    static let proxy4 = ep("10.77.2.10", 9199)
    static let client4 = ep("10.77.1.2", 40000)
    static let mta4 = ep("10.77.3.25", 25)
    static let router6 = ep("fd77:2::1", 40001)
    static let proxy6 = ep("fd77:2::10", 9199)
    static let client6 = ep("fd77:1::2", 40001)
    static let mta6 = ep("fd77:3::25", 25)

    static func tuple(_ s: HelperEndpoint, _ d: HelperEndpoint) -> ConnectionTuple {
        ConnectionTuple(family: s.family == .v4 ? .v4 : .v6, source: s.addressBytes, destination: d.addressBytes,
                        sourcePort: s.port, destinationPort: d.port)!
    }

    static let lookup = FakeLookup(table: [
        tuple(router4, proxy4): tuple(client4, mta4),
        tuple(router6, proxy6): tuple(client6, mta6),
    ])

    static func policy(legacy: UInt32? = 7, key: HelperKey? = Fixture.key, allow: [String] = ["10.77.2.10", "fd77:2::/64", "127.0.0.1", "::1"],
                       replayCapacity: Int = 1024) -> HelperPolicy {
        HelperPolicy(allow: AllowList(allow.map { try! CIDR(parsing: $0) }), legacySecret: legacy, key: key,
                     window: 30, replayCapacity: replayCapacity)
    }

    static func v2Query(key: HelperKey = Fixture.key, nonce: UInt64 = 42, timestamp: UInt64 = Fixture.now,
                        _ s: HelperEndpoint = router4, _ d: HelperEndpoint = proxy4) -> [UInt8] {
        try! V2Packet.encodeQuery(key: key, nonce: nonce, timestamp: timestamp, source: s, destination: d)
    }

    static func legacyQuery(secret: UInt32 = 7, cookie: UInt32 = 0xC00C1E,
                            _ s: HelperEndpoint = router4, _ d: HelperEndpoint = proxy4) -> [UInt8] {
        try! LegacyPacket.encodeQuery(cookie: cookie, secret: secret, source: s, destination: d)
    }
}
