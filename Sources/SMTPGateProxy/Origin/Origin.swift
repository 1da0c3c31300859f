import NIOCore
import SMTPGateCore

/// Where an accepted connection was really going, and who really made it.
struct Origin {
    /// The real destination: the proxy connects here and nowhere else.
    var destination: SocketAddress
    /// The real client (for a NAT'd connection, as the router's helper reported it).
    var client: SocketAddress
    /// Set when the connection arrived from an address other than the real client's (split mode).
    var natSource: SocketAddress?
    var ident: String?
}

/// Why the destination could not be found: `reason` for the log; `clientText` for the client, without
/// the operator's internal addresses (the router's SNAT address, say).
struct LookupError: Error {
    var reason: String
    var clientText: String

    init(reason: String, clientText: String? = nil) {
        self.reason = reason
        self.clientText = clientText ?? reason
    }
}

/// One per `mode`: finds the origin of an accepted connection, on that connection's event loop, without
/// ever blocking it.
protocol OriginFinder {
    func find(_ channel: Channel) -> EventLoopFuture<Origin>
}

extension OriginFinder {
    /// The connection's own peer as the client (every mode but remote-udp).
    func direct(_ channel: Channel, destination: SocketAddress) -> EventLoopFuture<Origin> {
        guard let peer = channel.remoteAddress else {
            return channel.eventLoop.makeFailedFuture(LookupError(reason: "no peer address"))
        }
        return channel.eventLoop.makeSucceededFuture(Origin(destination: destination, client: peer))
    }
}

/// `mode fixed` and `fixed+xclient`: the configured MTA.
struct FixedOrigin: OriginFinder {
    let server: IPAddress?
    let port: Int

    func find(_ channel: Channel) -> EventLoopFuture<Origin> {
        guard let server, let address = try? SocketAddress(ipAddress: server.text, port: port) else {
            return channel.eventLoop.makeFailedFuture(LookupError(reason: "fixed_server is not set"))
        }
        return direct(channel, destination: address)
    }
}

/// `mode getsockname` and `mode tproxy`: the accepted socket's local address is the original destination
/// (TPROXY, or a packet filter that rewrites only the routing).
struct LocalAddressOrigin: OriginFinder {
    func find(_ channel: Channel) -> EventLoopFuture<Origin> {
        guard let local = channel.localAddress else {
            return channel.eventLoop.makeFailedFuture(LookupError(reason: "no local address"))
        }
        return direct(channel, destination: local)
    }
}

