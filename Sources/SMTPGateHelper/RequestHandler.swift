#if canImport(Glibc)
import Glibc
#endif
import NIOConcurrencyHelpers
import SMTPGateCore

/// Who may ask what: the allow list, which protocol versions are on, and their secrets.
public struct HelperPolicy: Sendable {
    public var allow: AllowList
    /// 0x0402 queries are answered iff set; 0 accepts queries carrying no secret, any other value must match.
    public var legacySecret: UInt32?
    /// v2 queries are answered iff set.
    public var key: HelperKey?
    /// Seconds a v2 timestamp may differ from our clock; a nonce is remembered until its timestamp is
    /// that much in the past.
    public var window: UInt64
    /// Nonces remembered at most; when every one is still live, new v2 queries are refused. With clocks
    /// in step the sustainable v2 rate is about `replayCapacity / window` queries a second.
    public var replayCapacity: Int

    public static let defaultReplayCapacity = 1 << 18

    public init(allow: AllowList, legacySecret: UInt32?, key: HelperKey?,
                window: UInt64 = V2Packet.defaultWindow, replayCapacity: Int = defaultReplayCapacity) {
        self.allow = allow
        self.legacySecret = legacySecret
        self.key = key
        self.window = window
        self.replayCapacity = replayCapacity
    }
}

/// Drop reasons of the helper's own (the codec's come from `HelperPacketError.reason`).
public enum DropReason {
    /// The source address is outside every --allow prefix.
    public static let disallowed = "disallowed"
    /// A 0x0402 query, but no --legacy-secret was given.
    public static let legacyDisabled = "legacy_disabled"
    /// A v2 query, but no --key-file was given.
    public static let v2Disabled = "v2_disabled"
    /// A 0x0402 query whose secret is not ours.
    public static let badSecret = "bad_secret"
    /// More lookups waiting than the worker queue allows.
    public static let busy = "busy"
}

/// The request logic without sockets: is this datagram from this source a query we answer, and what
/// are the reply's bytes once the lookup is done. Thread-safe (the replay cache is behind a lock).
public final class RequestHandler: @unchecked Sendable {
    public enum Decision: Sendable {
        case drop(reason: String)
        case lookup(PendingQuery)
    }

    /// A query that passed every check; `seen` is what to look up.
    public struct PendingQuery: Sendable {
        enum Packet: Sendable {
            case legacy(LegacyPacket)
            case v2(V2Packet)
        }

        let packet: Packet
        /// The connection as the proxy saw it: source = router's address:port, destination = proxy's.
        public let seen: ConnectionTuple
        /// The query's length; the reply is never longer.
        public let size: Int
        /// "0x0402" or "2", for logs.
        public var version: String {
            if case .legacy = packet { return "0x0402" }
            return "2"
        }
    }

    public let policy: HelperPolicy
    private let clock: @Sendable () -> UInt64
    private let replay: NIOLockedValueBox<ReplayCache>

    /// - Parameter clock: Unix time in seconds (tests pass their own).
    public init(policy: HelperPolicy, clock: @escaping @Sendable () -> UInt64 = RequestHandler.unixNow) {
        self.policy = policy
        self.clock = clock
        self.replay = NIOLockedValueBox(ReplayCache(capacity: max(1, policy.replayCapacity), window: policy.window))
    }

    public static let unixNow: @Sendable () -> UInt64 = { UInt64(max(0, time(nil))) }

    /// The largest datagram worth reading; anything longer is refused as `long` without being copied.
    public static let maximumQuerySize = max(LegacyPacket.size, V2Packet.size)

    /// Checks in order: allow list, format, version enabled, authentication, freshness, replay.
    /// - Parameter source: the datagram's source address bytes (IPv4-mapped IPv6 is taken as IPv4).
    public func decide(_ bytes: [UInt8], from source: [UInt8]) -> Decision {
        guard policy.allow.allows(source) else { return .drop(reason: DropReason.disallowed) }
        guard bytes.count >= 4 else { return .drop(reason: HelperPacketError.short.reason) }
        guard bytes.count <= Self.maximumQuerySize else { return .drop(reason: HelperPacketError.long.reason) }
        let magic = bytes[0..<4].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        switch magic {
        case LegacyPacket.magic: return decideLegacy(bytes)
        case V2Packet.magic: return decideV2(bytes)
        default: return .drop(reason: HelperPacketError.badMagic.reason)
        }
    }

    private func decideLegacy(_ bytes: [UInt8]) -> Decision {
        guard let secret = policy.legacySecret else { return .drop(reason: DropReason.legacyDisabled) }
        let packet: LegacyPacket
        do {
            packet = try LegacyPacket.decode(bytes, expecting: .query)
        } catch {
            return .drop(reason: error.reason)
        }
        guard packet.secret == secret else { return .drop(reason: DropReason.badSecret) }
        return pending(.legacy(packet), packet.source, packet.destination, size: bytes.count)
    }

    private func decideV2(_ bytes: [UInt8]) -> Decision {
        guard let key = policy.key else { return .drop(reason: DropReason.v2Disabled) }
        let now = clock()
        let packet: V2Packet
        do {
            packet = try V2Packet.decode(bytes, key: key, now: now, window: policy.window, expecting: .query)
        } catch {
            return .drop(reason: error.reason)
        }
        // Only an authenticated, fresh query reaches the cache: forged packets cannot fill it.
        let admitted = replay.withLockedValue { cache -> HelperPacketError? in
            do throws(HelperPacketError) {
                try cache.admit(nonce: packet.nonce, timestamp: packet.timestamp, now: now)
                return nil
            } catch {
                return error
            }
        }
        if let admitted { return .drop(reason: admitted.reason) }
        return pending(.v2(packet), packet.source, packet.destination, size: bytes.count)
    }

    private func pending(_ packet: PendingQuery.Packet, _ source: HelperEndpoint, _ destination: HelperEndpoint,
                         size: Int) -> Decision {
        guard let seen = ConnectionTuple(family: source.family == .v4 ? .v4 : .v6, source: source.addressBytes,
                                         destination: destination.addressBytes, sourcePort: source.port,
                                         destinationPort: destination.port)
        else { return .drop(reason: HelperPacketError.badFamily.reason) }
        return .lookup(PendingQuery(packet: packet, seen: seen, size: size))
    }

    /// The reply to a looked-up query: same protocol and size, cookie or nonce echoed. `.error` is
    /// answered NOTFOUND. Nil only if the codec refuses to encode (not expected).
    public func reply(to query: PendingQuery, result: LookupResult) -> [UInt8]? {
        var answer = HelperAnswer.notFound
        if case .found(let orig) = result,
           let client = HelperEndpoint(addressBytes: orig.source, port: orig.sourcePort),
           let destination = HelperEndpoint(addressBytes: orig.destination, port: orig.destinationPort) {
            answer = .found(client: client, destination: destination, ident: [])
        }
        let bytes: [UInt8]
        do {
            switch query.packet {
            case .legacy(let q):
                bytes = try Self.encodeLegacy(q, answer)
            case .v2(let q):
                guard let key = policy.key else { return nil }
                bytes = try Self.encodeV2(key, q, answer, clock())
            }
        } catch {
            return nil
        }
        guard bytes.count == query.size else { return nil }
        return bytes
    }

    /// A FOUND that 0x0402 cannot carry (an IPv6 answer to an IPv4 query cannot happen, but) falls back to NOTFOUND.
    private static func encodeLegacy(_ q: LegacyPacket, _ a: HelperAnswer) throws(HelperPacketError) -> [UInt8] {
        do {
            return try LegacyPacket.encodeReply(to: q, answer: a)
        } catch {
            return try LegacyPacket.encodeReply(to: q, answer: .notFound)
        }
    }

    private static func encodeV2(_ key: HelperKey, _ q: V2Packet, _ a: HelperAnswer,
                                 _ now: UInt64) throws(HelperPacketError) -> [UInt8] {
        do {
            return try V2Packet.encodeReply(key: key, to: q, answer: a, timestamp: now)
        } catch {
            return try V2Packet.encodeReply(key: key, to: q, answer: .notFound, timestamp: now)
        }
    }

    /// Looks up synchronously and replies: the whole path in one call, for tests and tools.
    public func answer(_ bytes: [UInt8], from source: [UInt8], using lookup: ConnectionLookup) -> (reply: [UInt8]?, drop: String?) {
        switch decide(bytes, from: source) {
        case .drop(let reason): return (nil, reason)
        case .lookup(let q): return (reply(to: q, result: lookup.lookup(q.seen)), nil)
        }
    }
}
