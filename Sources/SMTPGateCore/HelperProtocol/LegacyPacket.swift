/// The smtp-gated proxy-helper packet, version 0x0402: 66 packed bytes, IPv4 only, authenticated by nothing
/// stronger than a cleartext secret and the echoed cookie (see helper-protocol.md for the layout).
public struct LegacyPacket: Sendable, Equatable {
    public static let size = 66
    public static let magic: UInt32 = 0x5250_4844  // "RPHD"
    public static let version: UInt16 = 0x0402
    public static let identCapacity = 32  // NUL included

    public let kind: HelperPacketKind
    public let cookie: UInt32
    /// The query's shared secret (0 = none); a reply echoes it, and old proxies ignore it there.
    public let secret: UInt32
    /// Query: the connection's source as the proxy sees it. FOUND: the real client. NOTFOUND: the query's, echoed.
    public let source: HelperEndpoint
    /// Query: the proxy's local address. FOUND: the real destination. NOTFOUND: the query's, echoed.
    public let destination: HelperEndpoint
    /// FOUND's ident text without its NUL; empty for none.
    public let ident: [UInt8]

    public static func encodeQuery(cookie: UInt32, secret: UInt32, source: HelperEndpoint,
                                   destination: HelperEndpoint) throws(HelperPacketError) -> [UInt8] {
        try encode(LegacyPacket(kind: .query, cookie: cookie, secret: secret,
                                source: source, destination: destination, ident: []))
    }

    /// Echoes the query's cookie and secret (and, for NOTFOUND, its addresses).
    public static func encodeReply(to query: LegacyPacket, answer: HelperAnswer) throws(HelperPacketError) -> [UInt8] {
        switch answer {
        case .found(let client, let destination, let ident):
            try encode(LegacyPacket(kind: .found, cookie: query.cookie, secret: query.secret,
                                    source: client, destination: destination, ident: ident))
        case .notFound:
            try encode(LegacyPacket(kind: .notFound, cookie: query.cookie, secret: query.secret,
                                    source: query.source, destination: query.destination, ident: []))
        }
    }

    public static func decode(_ bytes: [UInt8], expecting direction: HelperDirection) throws(HelperPacketError) -> LegacyPacket {
        guard bytes.count >= size else { throw .short }
        guard bytes.count == size else { throw .long }
        guard bytes.bigEndian(UInt32.self, at: 0) == magic else { throw .badMagic }
        guard bytes.bigEndian(UInt16.self, at: 12) == version else { throw .badVersion }
        guard let kind = HelperFlags.decode(bytes.bigEndian(UInt16.self, at: 14), expecting: direction) else {
            throw .badFlags
        }
        guard bytes.allZero(60..<66) else { throw .badReserved }
        let identField = bytes[28..<60]
        let ident: [UInt8]
        if kind == .query {
            guard identField.allSatisfy({ $0 == 0 }) else { throw .badIdent }
            ident = []
        } else {
            // Bytes after the NUL are not checked: old helpers may have left anything there.
            guard let end = identField.firstIndex(of: 0) else { throw .badIdent }
            ident = Array(bytes[28..<end])
        }
        return LegacyPacket(
            kind: kind,
            cookie: bytes.bigEndian(UInt32.self, at: 4),
            secret: bytes.bigEndian(UInt32.self, at: 8),
            source: HelperEndpoint(addressBytes: Array(bytes[16..<20]), port: bytes.bigEndian(UInt16.self, at: 24))!,
            destination: HelperEndpoint(addressBytes: Array(bytes[20..<24]), port: bytes.bigEndian(UInt16.self, at: 26))!,
            ident: ident)
    }

    /// For the proxy: is this the reply to the query it sent with `cookie`? (The proxy also checks the
    /// datagram came from the address it asked: the cookie is the only other authentication 0x0402 has.)
    public func matchesReply(cookie: UInt32) -> Bool {
        kind.direction == .reply && self.cookie == cookie
    }

    private static func encode(_ p: LegacyPacket) throws(HelperPacketError) -> [UInt8] {
        guard p.source.family == .v4, p.destination.family == .v4 else { throw .badFamily }
        guard p.ident.count < identCapacity, !p.ident.contains(0) else { throw .badIdent }
        var out: [UInt8] = []
        out.reserveCapacity(size)
        out.appendBigEndian(magic)
        out.appendBigEndian(p.cookie)
        out.appendBigEndian(p.secret)
        out.appendBigEndian(version)
        out.appendBigEndian(HelperFlags.encode(p.kind))
        out += p.source.addressBytes
        out += p.destination.addressBytes
        out.appendBigEndian(p.source.port)
        out.appendBigEndian(p.destination.port)
        out += p.ident
        out += [UInt8](repeating: 0, count: size - out.count)  // ident's NUL and padding, then the zero mac
        return out
    }
}
