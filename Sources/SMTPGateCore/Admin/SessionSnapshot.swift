/// One live session as `smtpgate status` shows it: taken on the session's own event loop, so it is a
/// consistent copy of loop-confined state.
public struct SessionSnapshot: Sendable, Equatable {
    public enum Kind: String, Sendable { case smtp, forward }

    public var id: String
    public var listener: String
    public var kind: Kind
    /// The real client once known, else the connection's peer.
    public var client: String
    /// `-` until the destination is known.
    public var destination: String
    /// What the session is doing: lookup, connecting, xclient, relay, takeover, blind, closing (SMTP);
    /// lookup, connecting, relay, closing (forwards).
    public var state: String
    public var ident: String?
    /// As the log shows it (`\xHH` for anything but printable ASCII); only with `log_helo`.
    public var helo: String?
    public var transactions: Int
    public var bytesIn: Int
    public var bytesOut: Int
    /// Seconds since the connection was accepted.
    public var age: Double

    public init(id: String, listener: String, kind: Kind, client: String, destination: String, state: String,
                ident: String? = nil, helo: String? = nil, transactions: Int = 0, bytesIn: Int, bytesOut: Int, age: Double) {
        self.id = id
        self.listener = listener
        self.kind = kind
        self.client = client
        self.destination = destination
        self.state = state
        self.ident = ident
        self.helo = helo
        self.transactions = transactions
        self.bytesIn = bytesIn
        self.bytesOut = bytesOut
        self.age = age
    }
}
