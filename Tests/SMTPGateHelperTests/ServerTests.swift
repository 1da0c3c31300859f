#if canImport(Glibc)
import Glibc
#endif
import NIOCore
import Testing
import SMTPGateCore
@testable import SMTPGateHelper

/// A plain UDP socket playing the proxy.
final class UDPPeer {
    let fd: Int32
    let v6: Bool

    init(v6: Bool = false) {
        self.v6 = v6
        fd = socket(v6 ? AF_INET6 : AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        var tv = timeval(tv_sec: 0, tv_usec: 300_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        let any = try! SocketAddress(ipAddress: v6 ? "::1" : "127.0.0.1", port: 0)
        any.withSockAddr { sa, len in _ = bind(fd, sa, socklen_t(len)) }
    }

    deinit { close(fd) }

    var port: Int {
        var ss = sockaddr_storage()
        var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
        withUnsafeMutablePointer(to: &ss) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { _ = getsockname(fd, $0, &len) } }
        return (try? SocketAddress(ss, len))?.port ?? 0
    }

    func send(_ bytes: [UInt8], to address: SocketAddress) {
        address.withSockAddr { sa, len in
            _ = bytes.withUnsafeBytes { sendto(fd, $0.baseAddress, $0.count, 0, sa, socklen_t(len)) }
        }
    }

    /// The next datagram within the timeout, or nil.
    func receive() -> [UInt8]? {
        var buf = [UInt8](repeating: 0, count: 4096)
        let n = recv(fd, &buf, buf.count, 0)
        return n < 0 ? nil : Array(buf[0..<n])
    }
}

extension SocketAddress {
    init(_ ss: sockaddr_storage, _ len: socklen_t) throws {
        var copy = ss
        switch Int32(ss.ss_family) {
        case AF_INET:
            self = withUnsafePointer(to: &copy) { $0.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { SocketAddress($0.pointee, host: "") } }
        default:
            self = withUnsafePointer(to: &copy) { $0.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { SocketAddress($0.pointee, host: "") } }
        }
    }
}

@Suite(.serialized) struct ServerTests {
    func server(_ policy: HelperPolicy = Fixture.policy(), lookup: ConnectionLookup = Fixture.lookup, log: RecordLog,
                maxPending: Int = 16) throws -> (HelperServer, [SocketAddress]) {
        let config = HelperServerConfiguration(
            listen: [try SocketAddress(ipAddress: "127.0.0.1", port: 0), try SocketAddress(ipAddress: "::1", port: 0)],
            policy: policy, workers: 2, maxPending: maxPending, dropLogInterval: 10)
        let s = HelperServer(configuration: config, lookup: lookup, log: log.emit, clock: { Fixture.now })
        return (s, try s.start())
    }

    @Test func answersTheQuerysSourceWithTheQuerysSize() throws {
        let log = RecordLog()
        let (s, addresses) = try server(log: log)
        defer { s.stop() }
        let asker = UDPPeer()
        let bystander = UDPPeer()
        let query = Fixture.legacyQuery()
        asker.send(query, to: addresses[0])
        let reply = try #require(asker.receive())
        #expect(reply.count == query.count)
        let r = try LegacyPacket.decode(reply, expecting: .reply)
        #expect(r.kind == .found && r.source == Fixture.client4 && r.destination == Fixture.mta4)
        #expect(bystander.receive() == nil)

        let asker6 = UDPPeer(v6: true)
        let q6 = Fixture.v2Query(nonce: 5, Fixture.router6, Fixture.proxy6)
        asker6.send(q6, to: addresses[1])
        let reply6 = try #require(asker6.receive())
        #expect(reply6.count == V2Packet.size)
        let r6 = try V2Packet.decode(reply6, key: Fixture.key, now: Fixture.now, expecting: .reply)
        #expect(r6.kind == .found && r6.nonce == 5 && r6.source == Fixture.client6)
    }

    @Test func dropsAreCountedAndLoggedOncePerInterval() throws {
        let log = RecordLog()
        let (s, addresses) = try server(Fixture.policy(allow: ["10.77.2.10"]), log: log)
        let peer = UDPPeer()
        for _ in 0..<5 { peer.send(Fixture.legacyQuery(), to: addresses[0]) }
        #expect(peer.receive() == nil)
        #expect(s.counters.snapshot.rejected["disallowed"] == 5)
        let drops = log.events("drop")
        #expect(drops.count == 1)
        #expect(drops.first?.fields.first?.1 == .text("disallowed"))
        #expect(drops.first?.fields[1].1 == .int(1))
        s.stop()
        // At stop the held-back four are reported.
        let after = log.events("drop")
        #expect(after.count == 2)
        #expect(after.last?.fields[1].1 == .int(4))
    }

    @Test func countersAndLatency() throws {
        let log = RecordLog()
        let (s, addresses) = try server(log: log)
        let peer = UDPPeer()
        peer.send(Fixture.legacyQuery(), to: addresses[0])
        #expect(peer.receive() != nil)
        peer.send(Fixture.legacyQuery(Fixture.ep("10.77.2.1", 2), Fixture.proxy4), to: addresses[0])
        #expect(peer.receive() != nil)
        peer.send(Fixture.v2Query(key: Fixture.otherKey), to: addresses[0])
        peer.send(Fixture.legacyQuery(secret: 1), to: addresses[0])
        peer.send([1, 2, 3], to: addresses[0])
        #expect(peer.receive() == nil)
        s.logCounters()
        let snap = s.counters.snapshot
        #expect(snap.queries == 2 && snap.found == 1 && snap.notFound == 1 && snap.lookupErrors == 0)
        #expect(snap.rejected == ["bad_mac": 1, "bad_secret": 1, "short": 1])
        #expect(snap.latency.count == 2)
        let line = try #require(log.events("counters").first).description
        #expect(line.hasPrefix("counters queries=2 found=1 not_found=1 lookup_error=0 rejected_bad_mac=1 rejected_bad_secret=1 rejected_short=1 lookup_count=2 lookup_mean_us="))
        #expect(line.contains("lookup_p50_us=") && line.contains("lookup_p99_us=") && line.contains("lookup_max_us="))
        s.stop()
    }

    @Test func busyWhenTooManyLookupsWait() throws {
        let log = RecordLog()
        let gate = GatedLookup()
        let (s, addresses) = try server(lookup: gate, log: log, maxPending: 2)
        let peer = UDPPeer()
        for i in 0..<4 { peer.send(Fixture.legacyQuery(cookie: UInt32(i)), to: addresses[0]) }
        // Two admitted (and answered once released), two dropped as busy.
        for _ in 0..<50 where s.counters.snapshot.rejected["busy"] != 2 { usleep(10_000) }
        #expect(s.counters.snapshot.rejected["busy"] == 2)
        gate.release()
        #expect(peer.receive() != nil)
        #expect(peer.receive() != nil)
        #expect(peer.receive() == nil)
        s.stop()
        #expect(gate.started.withLockedValue { $0 } == 2)
    }

    @Test func lookupErrorsAreLogged() throws {
        let log = RecordLog()
        let (s, addresses) = try server(lookup: FakeLookup(failing: true), log: log)
        let peer = UDPPeer()
        peer.send(Fixture.legacyQuery(), to: addresses[0])
        let reply = try #require(peer.receive())
        #expect(try LegacyPacket.decode(reply, expecting: .reply).kind == .notFound)
        s.stop()
        #expect(s.counters.snapshot.lookupErrors == 1)
        #expect(log.events("lookup_error").first?.description == "lookup_error count=1 error=\"fake failure\"")
    }

    @Test func bindFailureIsAClearError() throws {
        let log = RecordLog()
        let (s, addresses) = try server(log: log)
        defer { s.stop() }
        let config = HelperServerConfiguration(listen: [addresses[0]], policy: Fixture.policy(), workers: 1)
        let clash = HelperServer(configuration: config, lookup: Fixture.lookup, log: log.emit)
        // SO_REUSEADDR does not let two UDP sockets share an address without SO_REUSEPORT.
        #expect(throws: HelperError.self) { try clash.start() }
    }
}

@Suite struct CounterTests {
    @Test func dropLimiter() {
        var l = DropLogLimiter(interval: 10)
        #expect(l.note("bad_mac", now: 100) == 1)
        #expect(l.note("bad_mac", now: 101) == nil)
        #expect(l.note("bad_mac", now: 105) == nil)
        #expect(l.note("stale", now: 105) == 1)
        #expect(l.due(now: 109).isEmpty)
        #expect(l.note("bad_mac", now: 110) == 3)
        #expect(l.note("bad_mac", now: 111) == nil)
        let due = l.due(now: 121)
        #expect(due.count == 1 && due[0].reason == "bad_mac" && due[0].count == 1)
        #expect(l.note("bad_mac", now: 122) == nil)
        #expect(l.drain().map(\.count) == [1])
        #expect(l.drain().isEmpty)
    }
}
