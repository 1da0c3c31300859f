#if canImport(Glibc)
import Glibc
#endif

/// One direction of a TCP connection: addresses as raw network-order bytes (4 for IPv4, 16 for IPv6)
/// and ports in host order. The helper's lookup layer works on this type only; the wire codec's
/// endpoints are converted at the edge (`RequestHandler`).
public struct ConnectionTuple: Sendable, Hashable, CustomStringConvertible {
    public enum Family: UInt8, Sendable {
        case v4 = 4
        case v6 = 6

        public var addressLength: Int { self == .v4 ? 4 : 16 }
    }

    public let family: Family
    public let source: [UInt8]
    public let destination: [UInt8]
    public let sourcePort: UInt16
    public let destinationPort: UInt16

    /// Nil when an address does not have the family's length.
    public init?(family: Family, source: [UInt8], destination: [UInt8], sourcePort: UInt16, destinationPort: UInt16) {
        guard source.count == family.addressLength, destination.count == family.addressLength else { return nil }
        self.family = family
        self.source = source
        self.destination = destination
        self.sourcePort = sourcePort
        self.destinationPort = destinationPort
    }

    /// From address literals (tests, log output); nil when either is not a literal of one family.
    public init?(source: String, _ sourcePort: UInt16, destination: String, _ destinationPort: UInt16) {
        guard let s = AddressBytes.parse(source), let d = AddressBytes.parse(destination),
              s.count == d.count else { return nil }
        self.init(family: s.count == 4 ? .v4 : .v6, source: s, destination: d,
                  sourcePort: sourcePort, destinationPort: destinationPort)
    }

    public var sourceText: String { AddressBytes.format(source, port: sourcePort) }
    public var destinationText: String { AddressBytes.format(destination, port: destinationPort) }
    public var description: String { "\(sourceText)->\(destinationText)" }
}

/// The outcome of one lookup of a connection as the proxy saw it.
public enum LookupResult: Sendable, Equatable {
    /// The conntrack entry's original direction: real client → real destination.
    case found(ConnectionTuple)
    case notFound
    /// The lookup itself failed (netlink error, no permission…); answered like `notFound`, counted apart.
    case error(String)
}

/// Finds the original connection behind the one the proxy saw. `lookup` may block and is called only
/// on a worker thread, never on an event loop.
public protocol ConnectionLookup: Sendable {
    func lookup(_ seen: ConnectionTuple) -> LookupResult
}

/// Address literal <-> bytes without the C string pitfalls (an embedded NUL ends a C string early).
public enum AddressBytes {
    /// 4 or 16 bytes, or nil. Accepts `[v6]` in brackets. Only address characters are allowed through
    /// to inet_pton, so `"10.0.0.1\0junk"` or an overlong string is refused, not truncated.
    public static func parse(_ literal: String) -> [UInt8]? {
        var raw = Substring(literal)
        if raw.hasPrefix("["), raw.hasSuffix("]"), raw.count >= 2 {
            raw = raw.dropFirst().dropLast()
            guard raw.contains(":") else { return nil }  // brackets are for IPv6 only
        }
        guard !raw.isEmpty, raw.utf8.count <= 45,
              raw.utf8.allSatisfy({ isHex($0) || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: ":") })
        else { return nil }
        let text = String(raw)
        if !text.contains(":") {
            var a = in_addr()
            guard inet_pton(AF_INET, text, &a) == 1 else { return nil }
            return withUnsafeBytes(of: &a) { Array($0) }
        }
        var a6 = in6_addr()
        guard inet_pton(AF_INET6, text, &a6) == 1 else { return nil }
        return withUnsafeBytes(of: &a6) { Array($0) }
    }

    /// Canonical text (`inet_ntop`); IPv6 with a port in brackets.
    public static func format(_ bytes: [UInt8]) -> String {
        var buf = [CChar](repeating: 0, count: 64)
        let family = bytes.count == 4 ? AF_INET : AF_INET6
        guard bytes.count == 4 || bytes.count == 16 else { return "?" }
        let ok = bytes.withUnsafeBytes { src in
            inet_ntop(family, src.baseAddress, &buf, socklen_t(buf.count)) != nil
        }
        guard ok else { return "?" }
        return String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    public static func format(_ bytes: [UInt8], port: UInt16) -> String {
        bytes.count == 16 ? "[\(format(bytes))]:\(port)" : "\(format(bytes)):\(port)"
    }

    /// `::ffff:a.b.c.d` → the 4 IPv4 bytes; anything else unchanged. A dual-stack socket reports IPv4
    /// peers this way, and the allow list and the lookup must see them as IPv4.
    public static func unmapped(_ bytes: [UInt8]) -> [UInt8] {
        guard bytes.count == 16, bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xff, bytes[11] == 0xff
        else { return bytes }
        return Array(bytes[12..<16])
    }

    @inline(__always)
    static func isHex(_ c: UInt8) -> Bool {
        (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66)
    }
}
