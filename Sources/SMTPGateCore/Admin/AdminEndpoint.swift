/// `admin_listen`'s ADDRESS:PORT: a literal address (IPv6 in brackets), so the listener never depends on DNS.
public struct AdminEndpoint: Sendable, Equatable, CustomStringConvertible {
    public var address: IPAddress
    public var port: Int

    public init?(_ text: String) {
        guard case .tcp(let ip, let port)? = ScannerEndpoint(text) else { return nil }
        self.address = ip
        self.port = port
    }

    public var description: String { ScannerEndpoint.tcp(address, port).description }
}
