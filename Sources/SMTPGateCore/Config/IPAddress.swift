#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An IPv4 or IPv6 literal, validated and kept in its canonical text form.
public struct IPAddress: Sendable, Hashable, CustomStringConvertible {
    public enum Family: Sendable { case v4, v6 }
    public let family: Family
    public let text: String
    /// Network byte order: 4 bytes for IPv4, 16 for IPv6.
    public let bytes: [UInt8]

    public static let anyV4 = IPAddress("0.0.0.0")!
    public static let anyV6 = IPAddress("::")!

    public init?(_ literal: String) {
        var raw = literal
        if raw.hasPrefix("["), raw.hasSuffix("]") {
            raw = String(raw.dropFirst().dropLast())
        }
        guard !raw.isEmpty, raw.utf8.count < 64 else { return nil }
        var v4 = in_addr()
        var v6 = in6_addr()
        var buf = [CChar](repeating: 0, count: 64)
        if inet_pton(AF_INET, raw, &v4) == 1 {
            family = .v4
            inet_ntop(AF_INET, &v4, &buf, socklen_t(buf.count))
            bytes = withUnsafeBytes(of: &v4) { Array($0) }
        } else if inet_pton(AF_INET6, raw, &v6) == 1 {
            family = .v6
            inet_ntop(AF_INET6, &v6, &buf, socklen_t(buf.count))
            bytes = withUnsafeBytes(of: &v6) { Array($0) }
        } else {
            return nil
        }
        text = String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    public var description: String { text }

    /// `ADDR:PORT`, with brackets around IPv6 addresses.
    public func withPort(_ port: Int) -> String {
        family == .v6 ? "[\(text)]:\(port)" : "\(text):\(port)"
    }
}
