#if canImport(Glibc)
import Glibc
#endif
import NIOCore

extension SocketAddress {
    /// The IP address as text with an IPv4-mapped IPv6 address written as IPv4 (`LocalAddresses.normalised`
    /// of `ipAddress`). IPv4 is formatted here: NIO's `ipAddress` calls inet_ntop, some 1,700 instructions,
    /// and a session asks for its addresses a dozen times.
    var normalisedIP: String? {
        switch self {
        case .v4(let a):
            return Self.dotted(withUnsafeBytes(of: a.address.sin_addr) { Array($0) })
        case .v6(let a):
            let b = withUnsafeBytes(of: a.address.sin6_addr) { Array($0) }
            if Self.isMapped(b) { return Self.dotted(Array(b[12...])) }
            return ipAddress
        case .unixDomainSocket:
            return nil
        }
    }

    /// The address's 4 (IPv4, or IPv4-mapped IPv6) or 16 bytes, as `AddressBytes.parse(normalisedIP)`.
    var ipBytes: [UInt8]? {
        switch self {
        case .v4(let a):
            return withUnsafeBytes(of: a.address.sin_addr) { Array($0) }
        case .v6(let a):
            let b = withUnsafeBytes(of: a.address.sin6_addr) { Array($0) }
            return Self.isMapped(b) ? Array(b[12...]) : b
        case .unixDomainSocket:
            return nil
        }
    }

    private static func isMapped(_ b: [UInt8]) -> Bool {
        b[0..<10].allSatisfy { $0 == 0 } && b[10] == 0xff && b[11] == 0xff
    }

    private static func dotted(_ b: [UInt8]) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(15)
        for (i, octet) in b.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ".")) }
            if octet >= 100 { out.append(UInt8(ascii: "0") + octet / 100) }
            if octet >= 10 { out.append(UInt8(ascii: "0") + octet / 10 % 10) }
            out.append(UInt8(ascii: "0") + octet % 10)
        }
        return String(decoding: out, as: UTF8.self)
    }
}
