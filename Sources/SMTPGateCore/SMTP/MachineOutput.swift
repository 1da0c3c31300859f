/// What the I/O shell must do after feeding the machine: bytes for each side (in order), events, and
/// connection changes. A `.input` segment is a range of the buffer just fed, so bulk data is never copied.
public struct MachineOutput: Sendable, Equatable {
    public enum Segment: Sendable, Equatable {
        case input(Range<Int>)
        case bytes([UInt8])
    }

    public var toServer: [Segment] = []
    public var toClient: [Segment] = []
    public var events: [SessionEvent] = []
    /// Close the upstream once `toServer` is written.
    public var closeServer = false
    /// Close the client once `toClient` is written.
    public var closeClient = false
    /// Shut the upstream's write side (the client half-closed a blind relay).
    public var halfCloseServer = false
    /// From now on relay raw bytes both ways (STARTTLS was accepted).
    public var goBlind = false
    /// The machine is holding as much client input as it will; stop reading the client until `resumeClient`.
    public var pauseClient = false
    public var resumeClient = false
    /// With a scanner configured: a message began (the MTA said 354); the shell opens a spool.
    public var messageStart = false
    /// The message's bytes as the client sent them (dot-stuffed, without the terminator), for the spool.
    public var body: [Segment] = []
    /// The client finished the message (un-stuffed size); its final dot is held until `verdict`.
    public var messageEnd: Int?
    /// The policy asked to think: the shell finds the answer and gives it to `SessionMachine.answer`.
    public var questions: [PolicyPoint] = []

    public init() {}

    mutating func server(_ bytes: [UInt8]) { Self.append(&toServer, bytes) }
    mutating func toBody(_ bytes: [UInt8]) { Self.append(&body, bytes) }
    mutating func client(_ bytes: [UInt8]) { Self.append(&toClient, bytes) }

    private static func append(_ list: inout [Segment], _ bytes: [UInt8]) {
        if case .bytes(var last)? = list.last {
            list.removeLast()
            last.append(contentsOf: bytes)
            list.append(.bytes(last))
        } else {
            list.append(.bytes(bytes))
        }
    }
}

/// What happened in a session, for the log, metrics and later subscribers.
public enum SessionEvent: Sendable, Equatable {
    case transaction(Transaction)
    case takeover(reason: String)
    case startTLS
    /// The MTA sent a reply no command was waiting for; it was not passed on. `text` is escaped.
    case unsolicitedReply(code: Int, text: String)
    /// A per-session limit refused something for the first time in this transaction (`max_recipients`).
    case limitReached(limit: String, value: Int)
    /// The MTA's final reply to a command the client sent: what rate limits on rejects count. No log line
    /// of its own (the transaction line carries the codes).
    case replied(RepliedCommand, code: Int)
}

public enum RepliedCommand: String, Sendable {
    case mail, rcpt, auth, dataEnd = "data_end"
}

/// One mail transaction as the log shows it. Client-controlled text is already escaped.
public struct Transaction: Sendable, Equatable {
    /// The transaction's number in the session; nil for a MAIL the upstream refused (no transaction began).
    public var number: Int?
    public var helo: String?
    public var mailFrom: String
    /// The upstream's reply to MAIL (nil when the server took DATA without one).
    public var mailCode: Int?
    /// The first `recipientsKept` recipients with the upstream's replies; `recipientCount` counts them all.
    public var recipients: [LogRecord.Recipient]
    public var size: Int
    /// The upstream's reply to the end of DATA, or nil when the transaction ended without one.
    public var resultCode: Int?
    public var abort: EndReason?
    public var abortReason: String? { abort?.rawValue }
    /// What the scanners said, when the message was scanned.
    public var scan: ScanSummary?
    /// Recipients answered after the first `recipientsKept`: counted, not named.
    public var unlistedRecipients = 0
    public var recipientCount: Int { recipients.count + unlistedRecipients }

    /// Recipients named in a log line: the line (and what is held for it) stays bounded however many
    /// recipients a transaction has.
    public static let recipientsKept = 50

    mutating func record(_ r: LogRecord.Recipient) {
        if recipients.count < Self.recipientsKept { recipients.append(r) } else { unlistedRecipients += 1 }
    }
}
