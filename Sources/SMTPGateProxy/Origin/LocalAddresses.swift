#if canImport(Glibc)
import Glibc
#endif
import NIOCore

/// The host's own addresses, for loop detection: a destination that is this proxy's listener would make
/// the proxy connect to itself. Read at start-up and on reload.
struct LocalAddresses {
    private(set) var addresses: Set<String> = []

    static func current() -> LocalAddresses {
        var result = LocalAddresses()
        if let all = try? System.enumerateDevices() {
            for device in all {
                if let ip = device.address?.ipAddress { result.addresses.insert(Self.normalised(ip)) }
            }
        }
        return result
    }

    /// True when `destination` is one of this host's addresses on one of the proxy's listening ports, or
    /// the unspecified address.
    func isLoop(_ destination: SocketAddress, listenPorts: Set<Int>) -> Bool {
        guard let n = destination.normalisedIP, let port = destination.port else { return true }
        if n == "0.0.0.0" || n == "::" { return true }
        return listenPorts.contains(port) && (addresses.contains(n) || n.hasPrefix("127.") || n == "::1")
    }

    /// IPv4-mapped IPv6 addresses compare as IPv4.
    static func normalised(_ ip: String) -> String {
        ip.hasPrefix("::ffff:") && ip.utf8.contains(UInt8(ascii: ".")) ? String(ip.dropFirst(7)) : ip
    }
}
