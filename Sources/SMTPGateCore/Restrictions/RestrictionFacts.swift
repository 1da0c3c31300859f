/// What the restrictions are evaluated on, as the session knows it at the command. Client text is escaped.
public struct RestrictionFacts: Sendable, Equatable {
    /// The real client's address (4 or 16 bytes) and its text.
    public var clientAddress: [UInt8]
    public var clientText: String
    public var helo: String?
    /// The sender without angle brackets ("" for the null sender); nil before MAIL.
    public var sender: String?
    public var recipient: String?
    public var authenticated: Bool
    public var inMynetworks: Bool
    /// The command came while replies were still owed and the MTA had not offered PIPELINING.
    public var pipelinedAhead: Bool
    /// What a policy service is told besides (Postfix's attributes).
    public var ehlo = false
    public var recipientCount = 0
    public var instance = ""
    public var clientPort: Int?
    public var serverAddress = ""
    public var serverPort: Int?

    public init(clientAddress: [UInt8], clientText: String, helo: String? = nil, sender: String? = nil,
                recipient: String? = nil, authenticated: Bool = false, inMynetworks: Bool = false,
                pipelinedAhead: Bool = false) {
        self.clientAddress = clientAddress
        self.clientText = clientText
        self.helo = helo
        self.sender = sender
        self.recipient = recipient
        self.authenticated = authenticated
        self.inMynetworks = inMynetworks
        self.pipelinedAhead = pipelinedAhead
    }
}
