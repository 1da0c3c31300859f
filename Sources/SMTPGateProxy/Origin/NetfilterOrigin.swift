#if canImport(Glibc)
import Glibc
#endif
import NIOCore
import SMTPGateCore

/// `mode netfilter`: the kernel's record of the destination before REDIRECT/DNAT on this host,
/// `SO_ORIGINAL_DST` for IPv4 and `IP6T_SO_ORIGINAL_DST` for IPv6 (both option 80). An IPv4 client on an
/// IPv6 listener (`::ffff:a.b.c.d`) was NAT'ed as IPv4, so it is asked at the IPv4 level.
struct NetfilterOrigin: OriginFinder {
    static let soOriginalDst: Int32 = 80

    func find(_ channel: Channel) -> EventLoopFuture<Origin> {
        guard let provider = channel as? SocketOptionProvider, let local = channel.localAddress else {
            return channel.eventLoop.makeFailedFuture(LookupError(reason: "not a TCP socket"))
        }
        let mapped = local.ipAddress?.hasPrefix("::ffff:") == true && local.ipAddress?.contains(".") == true
        let v6 = local.protocol == .inet6 && !mapped
        let level = v6 ? NIOBSDSocket.OptionLevel.ipv6 : .ip
        let name = NIOBSDSocket.Option(rawValue: Self.soOriginalDst)
        let found: EventLoopFuture<SocketAddress>
        if v6 {
            found = provider.unsafeGetSocketOption(level: level, name: name).map { (a: sockaddr_in6) in
                SocketAddress(a, host: "")
            }
        } else {
            found = provider.unsafeGetSocketOption(level: level, name: name).map { (a: sockaddr_in) in
                SocketAddress(a, host: "")
            }
        }
        return found.flatMapError { error in
            channel.eventLoop.makeFailedFuture(LookupError(reason: "no original destination (\(errnoText(error)))"))
        }.flatMap { destination in
            direct(channel, destination: destination)
        }
    }
}

func errnoText(_ error: Error) -> String {
    if let e = error as? IOError { return errnoText(e.errnoCode) }
    return "\(error)"
}
