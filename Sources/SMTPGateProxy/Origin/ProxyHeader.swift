import NIOCore
import SMTPGateCore

/// The PROXY v2 header (`proxy_protocol yes`): the real client, and the address it connected to (the
/// proxy's listener), as the PROXY protocol defines them; IPv4-mapped addresses are given as IPv4.
enum ProxyHeader {
    static func make(client: SocketAddress, local: SocketAddress?) -> [UInt8]? {
        guard let local,
              let c = client.normalisedIP.flatMap(IPAddress.init),
              let d = local.normalisedIP.flatMap(IPAddress.init),
              let cp = client.port, let dp = local.port else { return nil }
        return ProxyProtocolV2.header(source: c, sourcePort: cp, destination: d, destinationPort: dp)
    }
}
