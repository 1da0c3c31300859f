/// What one listener has done since the daemon started (a listener a reload keeps keeps its counts):
/// connections ended (SMTP sessions, forwarded connections), refused, mail transactions, bytes each way.
public struct ListenerCounts: Sendable, Equatable {
    public var ended = 0
    public var refused = 0
    public var transactions = 0
    public var bytesIn = 0
    public var bytesOut = 0

    public init(ended: Int = 0, refused: Int = 0, transactions: Int = 0, bytesIn: Int = 0, bytesOut: Int = 0) {
        self.ended = ended
        self.refused = refused
        self.transactions = transactions
        self.bytesIn = bytesIn
        self.bytesOut = bytesOut
    }
}
