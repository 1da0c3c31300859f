#if canImport(Glibc)
import Glibc
#endif
import NIOCore
import SMTPGateCore

/// TPROXY socket options: `IP_TRANSPARENT` (19) / `IPV6_TRANSPARENT` (75). On the listener they let it
/// accept connections addressed to any destination; on an upstream socket they let it bind to the client's
/// address (`transparent_source`), so the MTA sees the real client. Both need CAP_NET_ADMIN.
enum Transparent {
    static let ipTransparent: Int32 = 19
    static let ipv6Transparent: Int32 = 75

    static func option(v6: Bool) -> ChannelOptions.Types.SocketOption {
        v6 ? ChannelOptions.Types.SocketOption(level: .ipv6, name: NIOBSDSocket.Option(rawValue: ipv6Transparent))
            : ChannelOptions.Types.SocketOption(level: .ip, name: NIOBSDSocket.Option(rawValue: ipTransparent))
    }

    static func option(for address: SocketAddress) -> ChannelOptions.Types.SocketOption {
        option(v6: address.protocol == .inet6)
    }

    /// The client's address with port 0: the kernel picks the source port.
    static func anyPort(_ address: SocketAddress) -> SocketAddress {
        var a = address
        a.port = 0
        return a
    }
}
