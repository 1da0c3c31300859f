#if canImport(Glibc)
import Glibc
#endif
import NIOCore
import SMTPGateCore

/// `mode netfilter`: the kernel's record of the destination before REDIRECT/DNAT on this host,
/// `SO_ORIGINAL_DST` for IPv4 and `IP6T_SO_ORIGINAL_DST` for IPv6 (both option 80).
struct NetfilterOrigin: OriginFinder {
    static let soOriginalDst: Int32 = 80

    func find(_ channel: Channel) -> EventLoopFuture<Origin> {
        guard let provider = channel as? SocketOptionProvider, let local = channel.localAddress else {
            return channel.eventLoop.makeFailedFuture(LookupError(reason: "not a TCP socket"))
        }
        let level = local.protocol == .inet6 ? NIOBSDSocket.OptionLevel.ipv6 : .ip
        let name = NIOBSDSocket.Option(rawValue: Self.soOriginalDst)
        let found: EventLoopFuture<SocketAddress>
        if local.protocol == .inet6 {
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
    if let e = error as? IOError { return String(cString: strerror(e.errnoCode)) }
    return "\(error)"
}
