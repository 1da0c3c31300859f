#if canImport(Glibc)
import Glibc
#endif
import CConntrack
import NIOPosix
import SMTPGateCore

/// Looks connections up in the kernel's conntrack table with one ctnetlink GET by tuple (never a dump),
/// through libnetfilter_conntrack. The handle is not thread-safe and `nfct_query` blocks, so each worker
/// thread opens its own handle on first use (kept in a thread-specific variable, closed when the thread
/// ends). Needs CAP_NET_ADMIN.
///
/// The proxy saw the connection as router:rp → proxy:pp. On the router the entry is original
/// client:cp → server:sp, reply proxy:pp → router:rp. A GET with only the reply tuple set does not work
/// with the library (it sends a zeroed original tuple), so the reply-direction values go into the
/// ORIG attributes — the kernel's hash finds a tuple in either direction — and the callback confirms the
/// entry's REPLY tuple really is proxy:pp → router:rp before taking its original direction.
public final class ConntrackLookup: ConnectionLookup, @unchecked Sendable {
    private let handles = ThreadSpecificVariable<ConntrackHandle>()
    private let receiveTimeout: Int

    /// - Parameter receiveTimeoutMilliseconds: bound on one netlink answer; a handle that timed out is
    ///   discarded and reopened, so a late answer is never taken for the next query's.
    public init(receiveTimeoutMilliseconds: Int = 1000) {
        self.receiveTimeout = receiveTimeoutMilliseconds
    }

    /// Opens a handle on the calling thread and asks for an entry that cannot exist, so a missing
    /// nf_conntrack_netlink or a missing CAP_NET_ADMIN (EPERM) stops the daemon at start-up instead of
    /// turning every query into a lookup error.
    public func probe() throws {
        let h = try ConntrackHandle(receiveTimeoutMilliseconds: receiveTimeout)
        let nowhere = ConnectionTuple(family: .v4, source: [0, 0, 0, 0], destination: [0, 0, 0, 0],
                                      sourcePort: 0, destinationPort: 0)!
        if case .error(let message) = h.get(nowhere) { throw HelperError(message) }
    }

    public func lookup(_ seen: ConnectionTuple) -> LookupResult {
        let h: ConntrackHandle
        do {
            h = try handle()
        } catch {
            return .error("\(error)")
        }
        let result = h.get(seen)
        if case .error = result { handles.currentValue = nil }  // reopen next time
        return result
    }

    private func handle() throws -> ConntrackHandle {
        if let h = handles.currentValue { return h }
        let h = try ConntrackHandle(receiveTimeoutMilliseconds: receiveTimeout)
        handles.currentValue = h
        return h
    }
}

public struct ConntrackError: Error, CustomStringConvertible {
    public let description: String
    init(_ what: String, errno e: Int32) {
        description = "\(what): \(errnoText(e))"
    }
}

/// One nfct handle. Use from one thread at a time.
final class ConntrackHandle {
    /// What the callback sees: the tuple to confirm, and what it found.
    final class Box {
        var expected: ConnectionTuple
        var found: ConnectionTuple?
        var mismatches = 0
        init(_ e: ConnectionTuple) { expected = e }
    }

    private let handle: OpaquePointer

    init(receiveTimeoutMilliseconds: Int) throws {
        guard let h = nfct_open(UInt8(CONNTRACK), 0) else {
            throw ConntrackError("cannot open conntrack netlink socket", errno: errno)
        }
        handle = h
        var tv = timeval(tv_sec: receiveTimeoutMilliseconds / 1000,
                         tv_usec: (receiveTimeoutMilliseconds % 1000) * 1000)
        _ = setsockopt(nfct_fd(h), SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit {
        nfct_close(handle)
    }

    func get(_ seen: ConnectionTuple) -> LookupResult {
        guard let ct = nfct_new() else { return .error("out of memory") }
        defer { nfct_destroy(ct) }
        // The reply direction of the wanted entry, written into the ORIG attributes: src = proxy, dst = router.
        switch seen.family {
        case .v4:
            nfct_set_attr_u8(ct, ATTR_L3PROTO, UInt8(AF_INET))
            nfct_set_attr_u32(ct, ATTR_IPV4_SRC, Self.u32(seen.destination))
            nfct_set_attr_u32(ct, ATTR_IPV4_DST, Self.u32(seen.source))
        case .v6:
            nfct_set_attr_u8(ct, ATTR_L3PROTO, UInt8(AF_INET6))
            seen.destination.withUnsafeBytes { nfct_set_attr(ct, ATTR_IPV6_SRC, $0.baseAddress) }
            seen.source.withUnsafeBytes { nfct_set_attr(ct, ATTR_IPV6_DST, $0.baseAddress) }
        }
        nfct_set_attr_u8(ct, ATTR_L4PROTO, UInt8(IPPROTO_TCP))
        nfct_set_attr_u16(ct, ATTR_PORT_SRC, seen.destinationPort.bigEndian)
        nfct_set_attr_u16(ct, ATTR_PORT_DST, seen.sourcePort.bigEndian)

        let box = Box(seen)
        let ctx = Unmanaged.passRetained(box)
        defer { ctx.release() }
        nfct_callback_register(handle, NFCT_T_ALL, { _, entry, data in
            // CONTINUE, never STOP: the GET is sent with NLM_F_ACK, and STOP returns from nfct_query before
            // the ACK is read. That ACK would then answer the handle's next query (with no entry), and that
            // query's entry the one after — every answer one behind.
            guard let entry, let data else { return Int32(NFCT_CB_CONTINUE) }
            let box = Unmanaged<ConntrackHandle.Box>.fromOpaque(data).takeUnretainedValue()
            if let orig = ConntrackHandle.originalIfReplyMatches(entry, box.expected) {
                box.found = orig
            } else {
                box.mismatches += 1
            }
            return Int32(NFCT_CB_CONTINUE)
        }, ctx.toOpaque())
        defer { nfct_callback_unregister(handle) }

        let rc = nfct_query(handle, NFCT_Q_GET, UnsafeRawPointer(ct))
        if rc < 0 {
            let e = errno
            if e == ENOENT { return .notFound }
            return .error(ConntrackError("conntrack get", errno: e).description)
        }
        return box.found.map { .found($0) } ?? .notFound
    }

    /// The entry's original tuple, if its reply tuple is exactly seen.dst → seen.src (TCP, same ports).
    static func originalIfReplyMatches(_ entry: OpaquePointer, _ seen: ConnectionTuple) -> ConnectionTuple? {
        guard nfct_get_attr_u8(entry, ATTR_L4PROTO) == UInt8(IPPROTO_TCP),
              nfct_get_attr_u8(entry, ATTR_REPL_L4PROTO) == UInt8(IPPROTO_TCP) else { return nil }
        guard UInt16(bigEndian: nfct_get_attr_u16(entry, ATTR_REPL_PORT_SRC)) == seen.destinationPort,
              UInt16(bigEndian: nfct_get_attr_u16(entry, ATTR_REPL_PORT_DST)) == seen.sourcePort else { return nil }
        let origSport = UInt16(bigEndian: nfct_get_attr_u16(entry, ATTR_ORIG_PORT_SRC))
        let origDport = UInt16(bigEndian: nfct_get_attr_u16(entry, ATTR_ORIG_PORT_DST))
        switch seen.family {
        case .v4:
            guard nfct_get_attr_u8(entry, ATTR_L3PROTO) == UInt8(AF_INET),
                  nfct_get_attr_u32(entry, ATTR_REPL_IPV4_SRC) == u32(seen.destination),
                  nfct_get_attr_u32(entry, ATTR_REPL_IPV4_DST) == u32(seen.source) else { return nil }
            return ConnectionTuple(family: .v4, source: bytes(nfct_get_attr_u32(entry, ATTR_ORIG_IPV4_SRC)),
                                   destination: bytes(nfct_get_attr_u32(entry, ATTR_ORIG_IPV4_DST)),
                                   sourcePort: origSport, destinationPort: origDport)
        case .v6:
            guard nfct_get_attr_u8(entry, ATTR_L3PROTO) == UInt8(AF_INET6),
                  v6(entry, ATTR_REPL_IPV6_SRC) == seen.destination,
                  v6(entry, ATTR_REPL_IPV6_DST) == seen.source,
                  let s = v6(entry, ATTR_ORIG_IPV6_SRC), let d = v6(entry, ATTR_ORIG_IPV6_DST) else { return nil }
            return ConnectionTuple(family: .v6, source: s, destination: d,
                                   sourcePort: origSport, destinationPort: origDport)
        }
    }

    /// Network-order bytes → the u32 the library stores (its memory holds the bytes in network order).
    static func u32(_ b: [UInt8]) -> UInt32 {
        b.withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) }
    }

    static func bytes(_ v: UInt32) -> [UInt8] {
        withUnsafeBytes(of: v) { Array($0) }
    }

    static func v6(_ entry: OpaquePointer, _ attr: nf_conntrack_attr) -> [UInt8]? {
        guard nfct_attr_is_set(entry, attr) > 0, let p = nfct_get_attr(entry, attr) else { return nil }
        return Array(UnsafeRawBufferPointer(start: p, count: 16))
    }
}
