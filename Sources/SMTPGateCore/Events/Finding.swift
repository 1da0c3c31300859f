/// Something a session found that `action_script` (and later locks) act on, with what the session knew
/// at that moment. Client text in it is escaped where the log would escape it.
public struct Finding: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        case virus(name: String)
        case spam(score: Double)
        case maxHost(limit: Int)
        case maxIdent(limit: Int)
        case rateLimit(RateExceeded)
        case sizeLimit(limit: Int?)
        case dnsbl(score: Int, zones: [String])
        case earlyTalk(bytes: Int)
        /// A `regex_*` option refused a command; `rule` is its name.
        case regex(rule: String)
        /// `spf`: the sender's domain does not allow the address (a `fail`).
        case spf(domain: String)
    }

    public var kind: Kind
    public var helo: String?
    public var mailFrom: String?
    public var recipients: Int
    public var size: Int
    /// The transaction's number, or the number of transactions so far when none was open.
    public var transaction: Int
    /// Path of a spool file that was kept.
    public var spoolName: String?

    public init(kind: Kind, helo: String? = nil, mailFrom: String? = nil, recipients: Int = 0, size: Int = 0,
                transaction: Int = 0, spoolName: String? = nil) {
        self.kind = kind
        self.helo = helo
        self.mailFrom = mailFrom
        self.recipients = recipients
        self.size = size
        self.transaction = transaction
        self.spoolName = spoolName
    }
}

extension Finding.Kind {
    /// The `lock_on` word that locks a client for this finding, if any does.
    public var lockCause: LockCause? {
        switch self {
        case .virus: return .virus
        case .spam: return .spam
        case .maxHost: return .maxhost
        case .maxIdent: return .maxident
        case .rateLimit: return .ratelimit
        case .sizeLimit: return nil
        case .dnsbl: return .dnsbl
        case .earlyTalk: return .earlytalk
        case .regex: return .regex
        case .spf: return .spf
        }
    }

    /// What a lock made for this finding says, for the log and `smtpgate locks list`.
    public var lockReason: String {
        switch self {
        case .virus(let name): return "virus \(name)"
        case .spam(let score): return "spam score \(score)"
        case .maxHost(let n): return "more than \(n) connections (max_per_host)"
        case .maxIdent(let n): return "more than \(n) connections (max_per_ident)"
        case .rateLimit(let e): return "\(e.kind.optionName) \(e.window.limit)/\(e.window.seconds) reached"
        case .sizeLimit: return "size_limit"
        case .dnsbl(let score, let zones): return "dnsbl score \(score) (\(zones.joined(separator: ",")))"
        case .earlyTalk(let n): return "talked before the greeting (\(n) bytes)"
        case .regex(let rule): return rule
        case .spf(let domain): return "spf fail (\(domain))"
        }
    }
}
