/// Where a policy server listens, in Postfix's syntax: `inet:ADDRESS:PORT` (`inet:[ADDRESS]:PORT` for IPv6)
/// or `unix:/absolute/path` (`local:` is taken as `unix:`). Only literal addresses: a host name would need DNS
/// for every connection, and Postfix's relative `unix:private/policy` names a socket in Postfix's queue
/// directory, which SMTPGate does not have.
public enum PolicyServiceEndpoint: Sendable, Equatable, CustomStringConvertible {
    case inet(IPAddress, Int)
    case unix(String)

    public init(parsing text: String) throws(PolicyValueError) {
        let shown = "'\(LogEscape.escape(text))'"
        if text.hasPrefix("unix:") || text.hasPrefix("local:") {
            let path = String(text[text.index(after: text.firstIndex(of: ":")!)...])
            guard path.hasPrefix("/") else {
                throw PolicyValueError("policy service \(shown): a unix socket needs an absolute path (unix:/run/postgrey.sock)")
            }
            guard path.utf8.count < 108, !path.utf8.contains(0) else {
                throw PolicyValueError("policy service \(shown): a unix socket path is at most 107 bytes")
            }
            self = .unix(path)
            return
        }
        guard text.hasPrefix("inet:") else {
            throw PolicyValueError("policy service \(shown): expected inet:ADDRESS:PORT or unix:/PATH")
        }
        let rest = text.dropFirst("inet:".count)
        guard let colon = rest.lastIndex(of: ":") else {
            throw PolicyValueError("policy service \(shown): expected inet:ADDRESS:PORT (inet:127.0.0.1:10023)")
        }
        var host = String(rest[..<colon])
        let portText = rest[rest.index(after: colon)...]
        if host.hasPrefix("["), host.hasSuffix("]") {
            host = String(host.dropFirst().dropLast())
        } else if host.contains(":") {
            throw PolicyValueError("policy service \(shown): write an IPv6 address in brackets (inet:[::1]:10023)")
        }
        guard let port = Int(portText), (1...65535).contains(port), portText.allSatisfy(\.isASCIIDigit) else {
            throw PolicyValueError("policy service \(shown): expected a port from 1 to 65535")
        }
        guard let ip = IPAddress(host), !host.hasPrefix("[") else {
            throw PolicyValueError("policy service \(shown): an IPv4 or IPv6 address is needed, not a host name")
        }
        self = .inet(ip, port)
    }

    public var description: String {
        switch self {
        case .inet(let ip, let port): return "inet:" + ip.withPort(port)
        case .unix(let path): return "unix:" + path
        }
    }
}

private extension Character {
    var isASCIIDigit: Bool { ("0"..."9").contains(self) }
}
