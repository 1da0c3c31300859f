#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An address and port as the helper protocol carries them: raw network-order address bytes (4 for IPv4,
/// 16 for IPv6), so the codec never goes through text and both the proxy and the helper share one type.
public struct HelperEndpoint: Sendable, Hashable, CustomStringConvertible {
    public let addressBytes: [UInt8]
    public let port: UInt16

    /// nil unless `addressBytes` is 4 (IPv4) or 16 (IPv6) bytes long.
    public init?(addressBytes: [UInt8], port: UInt16) {
        guard addressBytes.count == 4 || addressBytes.count == 16 else { return nil }
        self.addressBytes = addressBytes
        self.port = port
    }

    public init(_ address: IPAddress, port: UInt16) {
        // `IPAddress` only holds literals inet_pton accepted, so the conversion back cannot fail.
        if address.family == .v4 {
            var raw = in_addr()
            _ = inet_pton(AF_INET, address.text, &raw)
            addressBytes = withUnsafeBytes(of: &raw) { Array($0) }
        } else {
            var raw = in6_addr()
            _ = inet_pton(AF_INET6, address.text, &raw)
            addressBytes = withUnsafeBytes(of: &raw) { Array($0) }
        }
        self.port = port
    }

    public var family: IPAddress.Family { addressBytes.count == 4 ? .v4 : .v6 }

    public var address: IPAddress {
        var buf = [CChar](repeating: 0, count: 64)
        addressBytes.withUnsafeBytes { raw in
            _ = inet_ntop(family == .v4 ? AF_INET : AF_INET6, raw.baseAddress, &buf, socklen_t(buf.count))
        }
        return IPAddress(String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))!
    }

    /// `ADDR:PORT`, with brackets around IPv6 addresses.
    public var description: String { address.withPort(Int(port)) }
}
