/// Why a connection is turned away before its dialogue starts. Each gets one reply (from `ProxyReplies`),
/// a close reason and, for the log, what the administrator needs to know.
public enum Refusal: Sendable, Equatable {
    case tooManyConnections(limit: Int)
    case tooManyFromHost(limit: Int)
    /// `reason` is for the log; `clientText` is what the client may be told.
    case lookupFailed(reason: String, clientText: String)
    case loop(destination: String)
    case connectFailed(destination: String, reason: String)
    /// The real client is locked (`lock_on`, or by hand).
    case locked(ClientLock)
    /// A rate limit at connect (`ratelimit_connections`, `ratelimit_destinations`).
    case rateLimited(RateExceeded)
    case tooManyFromIdent(limit: Int)
    case loadTooHigh(load: Double, limit: Double)
    /// The `dnsbl` sites scored the real client at `dnsbl_threshold` or more.
    case dnsblListed(DNSBLVerdict)
    /// `earlytalker`: the client sent `bytes` before the MTA's greeting reached it.
    case earlyTalker(bytes: Int)
    /// `destination_restrictions` refused the real destination; `rule` is for the log.
    case destinationRefused(code: Int, enhanced: String, text: String, rule: String)

    /// A refusal of policy (not of capacity or of a failure): `policy_mode warn` logs it instead.
    public var isPolicy: Bool {
        switch self {
        case .locked, .rateLimited, .dnsblListed, .earlyTalker, .destinationRefused: return true
        default: return false
        }
    }

    var reply: ProxyReply {
        switch self {
        case .tooManyConnections(let n): return ProxyReplies.tooManyConnections(limit: n)
        case .tooManyFromHost(let n): return ProxyReplies.tooManyFromHost(limit: n)
        case .lookupFailed(_, let text): return ProxyReplies.lookupFailed(text)
        case .loop(let d): return ProxyReplies.loop(d)
        case .connectFailed(let d, let r): return ProxyReplies.connectFailed(d, r)
        case .locked(let lock): return ProxyReplies.locked(lock)
        case .rateLimited(let e): return ProxyReplies.rateLimitedAtConnect(e)
        case .tooManyFromIdent(let n): return ProxyReplies.tooManyFromIdent(limit: n)
        case .loadTooHigh(let load, let limit): return ProxyReplies.loadTooHigh(load: load, limit: limit)
        case .dnsblListed(let v): return ProxyReplies.dnsblListed(v)
        case .earlyTalker: return ProxyReplies.earlyTalker
        case .destinationRefused(let code, let enhanced, let text, _):
            return ProxyReply(code: code, enhanced: enhanced, text: text, named: false)
        }
    }

    public var why: EndReason {
        switch self {
        case .tooManyConnections: return .maxConnections
        case .tooManyFromHost: return .maxPerHost
        case .lookupFailed: return .lookupFailed
        case .loop: return .loop
        case .connectFailed: return .connectFailed
        case .locked: return .locked
        case .rateLimited: return .rateLimit
        case .tooManyFromIdent: return .maxPerIdent
        case .loadTooHigh: return .maxLoad
        case .dnsblListed: return .dnsbl
        case .earlyTalker: return .earlyTalk
        case .destinationRefused: return .destination
        }
    }
}
