
/// The SMTP-aware relay of one session, without sockets or clocks: the shell feeds it what each side sent
/// and what happened (close, timeout), and does what the returned `MachineOutput` says.
///
/// Every command forwarded upstream is queued with what its reply means; replies are matched in order
/// (PIPELINING), and replies the proxy writes itself wait their turn in the same queue.
public struct SessionMachine {
    public enum Closer: String, Sendable { case client, server, proxy }

    /// Which timeout applies now.
    public enum Phase: Sendable, Equatable { case relay, takeover, blind, closed }

    enum ClientMode {
        case command
        case data(forward: Bool)
        case sasl
        case longLine(forward: Bool, barrierAfter: Bool)
        case swallow(UInt64)
        case blind
        case closed
    }

    enum Expect {
        case greeting
        case hello(ehlo: Bool, name: String)
        case mail(String)
        case rcpt(String)
        case data
        case dataEnd
        case auth
        case startTLS
        case quit
        case rset
        case other
        case proxyQuit
        case local(ProxyReply?, close: (why: EndReason, by: Closer)?)

        var isServer: Bool {
            if case .local = self { return false }
            return true
        }
    }

    public let settings: SessionSettings
    public internal(set) var replies: ProxyReplies
    /// Sent to the MTA right after its 354, ahead of the client's message (`nat_header`).
    public var natHeader: [UInt8]?
    /// Header lines (with CRLF) a policy asked for, written after `natHeader` when DATA is answered 354.
    var prepended: [[UInt8]] = []
    static let maxPrepended = 32
    var mode = ClientMode.command
    var pending: [Expect] = [.greeting]
    var serverPending = 1
    var lineBuf: [UInt8] = []
    var held: [UInt8] = []
    var barrier = false
    var paused = false
    var reader = ReplyReader()
    var scanner = DataEndScanner()
    var bareDot = BareNewlineDot()
    var takeover: Takeover?
    var serverOpen = true
    var quitSent = false
    var clientEOF = false
    var quitAnswered = false
    /// A closing reply is queued: nothing the client sends after it is read.
    var discardClient = false
    var txn: Transaction?
    /// RCPTs relayed since the last MAIL (HELO, RSET) and not refused: what `max_recipients` counts.
    var relayedRecipients = 0
    /// `max_recipients` was hit in this transaction (logged once per transaction).
    var recipientLimitHit = false
    var dataBytes = 0
    /// Why the body being swallowed will be refused at its end (nil: the upstream was lost).
    var dataRejection: (reply: ProxyReply, why: EndReason)?
    /// Bytes that may begin the final dot line, not yet sent on (only while holding the final dot).
    var maybeDot: [UInt8] = []
    /// The message is complete and its dot held; the reply owed for it is the front `.dataEnd`.
    var waiting: Waiting?
    /// The proxy refused the MAIL of the transaction the client is in (a policy, `size_limit`).
    var mailRefusedHere = false
    /// The message is complete and its final dot held: nothing may go upstream before that dot.
    var awaitingVerdict: Bool { waiting?.holdsDot ?? false }

    /// What the machine holds the client's input for, besides a barrier command's reply.
    enum Waiting {
        /// A command the policy asked to think about; it goes back to the head of the input if the session
        /// changes under it (the upstream is lost), so whatever answers next answers it in order.
        case command(Verb, line: [UInt8], path: ArraySlice<UInt8>)
        /// The policy's answer on a finished message.
        case policy(size: Int)
        /// The scanners' verdict on a finished message.
        case scan

        var holdsDot: Bool {
            if case .command = self { return false }
            return true
        }
    }

    /// Asked at HELO/EHLO, MAIL, RCPT, DATA and the end of each message; nil relays everything.
    public var policy: ((PolicyPoint, PolicyState) -> PolicyDecision)?
    public internal(set) var authenticated = false
    /// Whether the MTA's last positive EHLO reply listed AUTH; nil before one came, or after HELO.
    public internal(set) var authOffered: Bool?
    /// The MTA's last positive EHLO reply listed PIPELINING.
    public internal(set) var pipeliningOffered = false

    /// What the client has sent so far, whatever the MTA has answered yet: a RCPT pipelined behind its
    /// MAIL is judged with that MAIL's sender, not with none.
    struct SentCommands {
        var helo: String?
        var ehlo = false
        var mailFrom: String?
        /// MAIL commands relayed: the number of the transaction they open.
        var mails = 0
    }
    var sent = SentCommands()

    public var policyState: PolicyState {
        PolicyState(helo: sent.helo ?? helo, authenticated: authenticated, authOffered: authOffered, mailFrom: sent.mailFrom,
                    recipients: relayedRecipients, transactions: sent.mails,
                    pipelinedAhead: !pending.isEmpty && !pipeliningOffered, ehlo: sent.ehlo)
    }
    public internal(set) var helo: String?
    /// The MTA's greeting has gone to the client.
    public internal(set) var greeted = false
    public internal(set) var transactions = 0
    public internal(set) var endReason: EndReason?
    public var closeReason: String? { endReason?.rawValue }
    var closeReasonFixed = false
    /// Why the session was taken over, if it was.
    public var takeoverReason: String? { takeover?.reason }
    public internal(set) var closedBy: Closer?
    /// The number of the transaction in progress, if one is.
    public var currentTransaction: Int? { txn?.number }
    public var currentMailFrom: String? { txn?.mailFrom }
    public var currentRecipients: Int { txn?.recipientCount ?? 0 }

    public init(settings: SessionSettings) {
        self.settings = settings
        self.replies = ProxyReplies(proxyName: settings.proxyName, texts: settings.replyTexts)
    }

    public var phase: Phase {
        switch mode {
        case .blind: return .blind
        case .closed: return .closed
        default: return takeover == nil ? .relay : .takeover
        }
    }
}
