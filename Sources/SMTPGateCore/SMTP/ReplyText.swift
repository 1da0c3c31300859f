/// smtp-gated's `msg_*` options that have a reply here: each names the replies whose text it replaces
/// (the code and the enhanced status code stay the proxy's, as clients act on them) and the variables
/// its template may use.
public enum ReplyText: String, Sendable, CaseIterable, Hashable {
    case virusFound = "virus_found"
    case spamFound = "spam_found"
    case scannerFailed = "scanner_failed"
    case virusLocked = "virus_locked"
    case lookupFailed = "lookup_failed"
    case connectFailed = "connect_failed"
    case transactionFailed = "transaction_failed"
    case sessionTimeout = "session_timeout"
    case signOff = "sign_off"
    case tempUnavail = "temp_unavail"
    case pipelineFull = "pipeline_full"
    case unimplCommand = "unimpl_command"
    case maxReached = "max_reached"
    case maxPerHost = "max_per_host"
    case maxPerIdent = "max_per_ident"
    case systemLoad = "system_load"
    case authRequired = "auth_required"
    case loopAvoidance = "loop_avoidance"
    case sizeLimit = "size_limit"
    case dnsdbReject = "dnsdb_reject"
    case spfReject = "spf_reject"
    case rateReject = "rate_reject"
    case ratelimitMessages = "ratelimit_messages"
    case ratelimitRcptto = "ratelimit_rcptto"
    case ratelimitRcpttoRejects = "ratelimit_rcptto_rejects"
    case ratelimitMailfromRejects = "ratelimit_mailfrom_rejects"
    case ratelimitDst = "ratelimit_dst"
    case earlytalker = "earlytalker"
    case regexHelo = "regex_helo"
    case regexMailFrom = "regex_mail_from"
    case regexRcptTo = "regex_rcpt_to"

    public var optionName: String { "msg_" + rawValue }

    /// What `$name` may stand for in this option's text; the man page lists the same.
    public var variables: [String] {
        switch self {
        case .virusFound: return ["virus"]
        case .spamFound: return ["score", "threshold"]
        case .scannerFailed, .lookupFailed, .transactionFailed: return ["reason"]
        case .virusLocked: return ["cause", "until"]
        case .connectFailed: return ["destination", "reason"]
        case .sessionTimeout: return ["timeout"]
        case .unimplCommand: return ["command"]
        case .maxReached, .maxPerHost, .maxPerIdent, .sizeLimit: return ["limit"]
        case .systemLoad: return ["load", "limit"]
        case .loopAvoidance: return ["destination"]
        case .dnsdbReject: return ["client", "zone", "score"]
        case .spfReject: return ["sender", "client", "result"]
        case .rateReject, .ratelimitMessages, .ratelimitRcptto, .ratelimitRcpttoRejects, .ratelimitMailfromRejects, .ratelimitDst:
            return ["count", "limit", "seconds", "option"]
        case .regexHelo, .regexMailFrom, .regexRcptTo: return ["option"]
        case .signOff, .tempUnavail, .pipelineFull, .authRequired, .earlytalker: return []
        }
    }

    /// The texts a rate-limit refusal tries, most specific first: smtp-gated's per-limit option, then its
    /// general `msg_rate_reject`.
    static func rate(_ kind: RateKind) -> [ReplyText] {
        switch kind {
        case .messages: return [.ratelimitMessages, .rateReject]
        case .recipients: return [.ratelimitRcptto, .rateReject]
        case .rcpttoRejects: return [.ratelimitRcpttoRejects, .rateReject]
        case .mailfromRejects: return [.ratelimitMailfromRejects, .rateReject]
        case .destinations: return [.ratelimitDst, .rateReject]
        case .connections, .bytes, .authRejects: return [.rateReject]
        }
    }
}
