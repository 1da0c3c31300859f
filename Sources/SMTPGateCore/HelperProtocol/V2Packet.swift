import Crypto

/// The authenticated proxy-helper packet, version 2: 160 bytes, IPv4 or IPv6, HMAC-SHA256 over bytes 0..<128
/// with a timestamp and the proxy's random nonce (layout in ISSUE3.md).
public struct V2Packet: Sendable, Equatable {
    public static let size = 160
    public static let magic: UInt32 = 0x5250_4832  // "RPH2"
    public static let version: UInt16 = 0x0002
    public static let identCapacity = 64
    public static let defaultWindow: UInt64 = 30
    static let macOffset = 128

    public let kind: HelperPacketKind
    /// The sender's Unix time in seconds.
    public let timestamp: UInt64
    /// Chosen by the proxy from a CSPRNG (`UInt64.random(in: .min ... .max)` uses the system's); the reply echoes it.
    public let nonce: UInt64
    /// Query: the connection's source as the proxy sees it. FOUND: the real client. NOTFOUND: the query's, echoed.
    public let source: HelperEndpoint
    /// Query: the proxy's local address. FOUND: the real destination. NOTFOUND: the query's, echoed.
    public let destination: HelperEndpoint
    /// FOUND's ident text; empty for none and in every other kind.
    public let ident: [UInt8]

    public static func encodeQuery(key: HelperKey, nonce: UInt64, timestamp: UInt64, source: HelperEndpoint,
                                   destination: HelperEndpoint) throws(HelperPacketError) -> [UInt8] {
        try encode(V2Packet(kind: .query, timestamp: timestamp, nonce: nonce,
                            source: source, destination: destination, ident: []), key: key)
    }

    /// Echoes the query's nonce (and, for NOTFOUND, its addresses), stamped with the helper's own clock.
    public static func encodeReply(key: HelperKey, to query: V2Packet, answer: HelperAnswer,
                                   timestamp: UInt64) throws(HelperPacketError) -> [UInt8] {
        switch answer {
        case .found(let client, let destination, let ident):
            try encode(V2Packet(kind: .found, timestamp: timestamp, nonce: query.nonce,
                                source: client, destination: destination, ident: ident), key: key)
        case .notFound:
            try encode(V2Packet(kind: .notFound, timestamp: timestamp, nonce: query.nonce,
                                source: query.source, destination: query.destination, ident: []), key: key)
        }
    }

    /// Checks everything but replay, which needs state: the helper follows a successful query decode with
    /// `ReplayCache.admit`, the proxy with `matchesReply(nonce:)`.
    public static func decode(_ bytes: [UInt8], key: HelperKey, now: UInt64, window: UInt64 = defaultWindow,
                              expecting direction: HelperDirection) throws(HelperPacketError) -> V2Packet {
        guard bytes.count >= size else { throw .short }
        guard bytes.count == size else { throw .long }
        // Authenticate before parsing anything: no field of a forged packet steers the code, and any
        // tampered byte reads as bad_mac rather than as whatever field it happened to hit.
        guard HMAC<SHA256>.isValidAuthenticationCode(bytes[macOffset...], authenticating: bytes[..<macOffset],
                                                      using: key.symmetric) else { throw .badMAC }
        guard bytes.bigEndian(UInt32.self, at: 0) == magic else { throw .badMagic }
        guard bytes.bigEndian(UInt16.self, at: 4) == version else { throw .badVersion }
        guard let kind = HelperFlags.decode(bytes.bigEndian(UInt16.self, at: 6), expecting: direction) else {
            throw .badFlags
        }
        guard bytes.allZero(26..<28) else { throw .badReserved }
        let addressLength: Int
        switch bytes[24] {
        case 4: addressLength = 4
        case 6: addressLength = 16
        default: throw .badFamily
        }
        guard bytes.allZero(28 + addressLength..<44), bytes.allZero(44 + addressLength..<60) else { throw .badAddress }
        let identLength = Int(bytes[25])
        guard identLength <= identCapacity, kind == .found || identLength == 0,
              bytes.allZero(64 + identLength..<128), !bytes[64..<64 + identLength].contains(0) else { throw .badIdent }
        let timestamp = bytes.bigEndian(UInt64.self, at: 8)
        guard (timestamp > now ? timestamp - now : now - timestamp) <= window else { throw .stale }
        return V2Packet(
            kind: kind,
            timestamp: timestamp,
            nonce: bytes.bigEndian(UInt64.self, at: 16),
            source: HelperEndpoint(addressBytes: Array(bytes[28..<28 + addressLength]),
                                   port: bytes.bigEndian(UInt16.self, at: 60))!,
            destination: HelperEndpoint(addressBytes: Array(bytes[44..<44 + addressLength]),
                                        port: bytes.bigEndian(UInt16.self, at: 62))!,
            ident: Array(bytes[64..<64 + identLength]))
    }

    /// For the proxy: is this the reply to the query it sent with `nonce`? (The proxy also checks the
    /// datagram came from the address it asked.)
    public func matchesReply(nonce: UInt64) -> Bool {
        kind.direction == .reply && self.nonce == nonce
    }

    private static func encode(_ p: V2Packet, key: HelperKey) throws(HelperPacketError) -> [UInt8] {
        guard p.source.family == p.destination.family else { throw .badFamily }
        guard p.ident.count <= identCapacity, !p.ident.contains(0) else { throw .badIdent }
        var out: [UInt8] = []
        out.reserveCapacity(size)
        out.appendBigEndian(magic)
        out.appendBigEndian(version)
        out.appendBigEndian(HelperFlags.encode(p.kind))
        out.appendBigEndian(p.timestamp)
        out.appendBigEndian(p.nonce)
        out.append(p.source.family == .v4 ? 4 : 6)
        out.append(UInt8(p.ident.count))
        out += [0, 0]
        for endpoint in [p.source, p.destination] {
            out += endpoint.addressBytes
            out += [UInt8](repeating: 0, count: 16 - endpoint.addressBytes.count)
        }
        out.appendBigEndian(p.source.port)
        out.appendBigEndian(p.destination.port)
        out += p.ident
        out += [UInt8](repeating: 0, count: macOffset - out.count)
        out += HMAC<SHA256>.authenticationCode(for: out, using: key.symmetric)
        return out
    }
}
