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
        if case .v4(let a) = self {
            // Straight from the in_addr (network byte order): no array made for the commonest case.
            return withUnsafeBytes(of: a.address.sin_addr.s_addr) { AddressBytes.dotted($0[0], $0[1], $0[2], $0[3]) }
        }
        return ipBytes.map(AddressBytes.format)
    }

    /// The address's 4 (IPv4, or IPv4-mapped IPv6) or 16 bytes, as `AddressBytes.parse(normalisedIP)`.
    var ipBytes: [UInt8]? {
        switch self {
        case .v4(let a):
            return withUnsafeBytes(of: a.address.sin_addr) { Array($0) }
        case .v6(let a):
            return AddressBytes.unmapped(withUnsafeBytes(of: a.address.sin6_addr) { Array($0) })
        case .unixDomainSocket:
            return nil
        }
    }
}
