#if canImport(Glibc)
import Glibc
#endif
import NIOCore
import SMTPGateCore

extension SocketAddress {
    /// The IP address as text with an IPv4-mapped IPv6 address written as IPv4 (`LocalAddresses.normalised`
    /// of `ipAddress`). IPv4 is formatted by `AddressBytes.dotted`, not by the inet_ntop NIO's `ipAddress`
    /// calls: a session asks for its addresses a dozen times.
    var normalisedIP: String? {
        switch self {
        case .v4(let a):
            return Self.dotted(a.address.sin_addr.s_addr)
        case .v6(let a):
            return withUnsafeBytes(of: a.address.sin6_addr) { b in
                Self.isMapped(b) ? Self.dotted(b.loadUnaligned(fromByteOffset: 12, as: UInt32.self)) : nil
            } ?? ipAddress
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
            return withUnsafeBytes(of: a.address.sin6_addr) { Self.isMapped($0) ? Array($0[12...]) : Array($0) }
        case .unixDomainSocket:
            return nil
        }
    }

    private static func isMapped(_ b: UnsafeRawBufferPointer) -> Bool {
        b[0..<10].allSatisfy { $0 == 0 } && b[10] == 0xff && b[11] == 0xff
    }

    /// An IPv4 address in network byte order, as in `in_addr`.
    private static func dotted(_ networkOrder: UInt32) -> String {
        withUnsafeBytes(of: networkOrder) { AddressBytes.dotted($0[0], $0[1], $0[2], $0[3]) }
    }
}
