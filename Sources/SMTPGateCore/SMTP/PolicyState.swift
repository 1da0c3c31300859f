/// What the session machine knows when it asks its policy: enough for a check that depends on the
/// dialogue so far (authentication, the HELO name, the transaction's sender). Client text is escaped.
public struct PolicyState: Sendable, Equatable {
    public var helo: String?
    /// The MTA accepted an AUTH (a 2xx reply).
    public var authenticated: Bool
    /// The MTA's last positive EHLO reply listed AUTH; nil when none has come (no EHLO yet, its reply
    /// still on the way, or HELO).
    public var authOffered: Bool?
    public var mailFrom: String?
    public var recipients: Int
    /// Transactions the session has had (what a finding is numbered by).
    public var transactions: Int
    /// The command came while replies were still owed, and the MTA had not offered PIPELINING
    /// (RFC 2920: the client may not send ahead then).
    public var pipelinedAhead: Bool
    /// The client greeted with EHLO (Postfix's protocol_name ESMTP).
    public var ehlo = false

    public init(helo: String? = nil, authenticated: Bool = false, authOffered: Bool? = nil, mailFrom: String? = nil,
                recipients: Int = 0, transactions: Int = 0, pipelinedAhead: Bool = false, ehlo: Bool = false) {
        self.helo = helo
        self.authenticated = authenticated
        self.authOffered = authOffered
        self.mailFrom = mailFrom
        self.recipients = recipients
        self.transactions = transactions
        self.pipelinedAhead = pipelinedAhead
        self.ehlo = ehlo
    }
}
