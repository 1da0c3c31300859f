/// Where a scanner daemon listens: `antivirus_path` / `antispam_path` is an absolute unix socket path,
/// or `ADDRESS:PORT` (`[ADDRESS]:PORT` for IPv6) with a literal address, so no DNS is involved.
public enum ScannerEndpoint: Sendable, Equatable, CustomStringConvertible {
    case unix(String)
    case tcp(IPAddress, Int)

    public init?(_ text: String) {
        if text.hasPrefix("/") {
            guard text.utf8.count < 108, !text.utf8.contains(0) else { return nil }
            self = .unix(text)
            return
        }
        guard let colon = text.lastIndex(of: ":") else { return nil }
        var host = String(text[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") {
            host = String(host.dropFirst().dropLast())
        } else if host.contains(":") {
            return nil
        }
        guard let ip = IPAddress(host), let port = Int(text[text.index(after: colon)...]), (1...65535).contains(port) else {
            return nil
        }
        self = .tcp(ip, port)
    }

    public var description: String {
        switch self {
        case .unix(let path): return path
        case .tcp(let ip, let port): return ip.text.contains(":") ? "[\(ip.text)]:\(port)" : "\(ip.text):\(port)"
        }
    }
}
