/// Where a session is and what it is called, for its log lines.
public struct SessionContext: Sendable {
    public var id: String
    public var listener: String
    public var client: String
    public var local: String
    public var destination: String
    /// The address the connection arrived from when it is not the real client's (split mode: the router).
    public var natSource: String?
    /// The ident the helper reported, escaped.
    public var ident: String?
    /// The same facts unescaped and unformatted, for subscribers that are not the log (the action script).
    public var facts = SessionFacts()

    public init(id: String, listener: String, client: String, local: String, destination: String) {
        self.id = id
        self.listener = listener
        self.client = client
        self.local = local
        self.destination = destination
    }
}

/// Who a session is between, as addresses and ports rather than log text: set once the origin is known.
public struct SessionFacts: Sendable, Equatable {
    /// The real client (normalised: an IPv4 client on an IPv6 socket shows as IPv4).
    public var clientIP: String?
    public var clientPort: Int?
    /// The real destination.
    public var destinationIP: String?
    public var destinationPort: Int?
    /// The proxy's own end of the client connection.
    public var localIP: String?
    public var localPort: Int?
    /// The ident the helper reported, as it reported it.
    public var ident: String?
    /// Unix time in seconds at which the session began.
    public var started: Double = 0
    /// Who locks and rate limits count this session against; nil when the client is a NAT source.
    public var lockKey: ClientKey?
    public var rateKey: ClientKey?

    public init() {}
}
