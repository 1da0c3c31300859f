/// What a lookup came to. A listing check needs to tell "not listed" (NXDOMAIN, no data) from "could
/// not ask" (the failures), because only the latter may be a temporary failure.
public enum DNSAnswer: Sendable, Equatable {
    /// The records of the asked type, and the TTL the resolver gave them.
    case records([DNSRecord], ttl: Int)
    case nxdomain
    /// The name exists but has no record of this type.
    case noData
    case failure(DNSFailure)

    public var records: [DNSRecord] {
        if case .records(let r, _) = self { return r }
        return []
    }
}

public enum DNSFailure: Sendable, Equatable, CustomStringConvertible {
    /// No answer within the per-query timeout.
    case timeout
    /// The server answered SERVFAIL, REFUSED or another error code.
    case serverFailure(rcode: Int)
    /// Records of the type asked that cannot be decoded.
    case malformed
    /// More lookups in flight than the resolver allows.
    case busy
    /// A name that cannot be asked (too long, an empty label).
    case badName
    /// The resolver library itself failed (no socket, out of memory…).
    case resolver(String)

    public var description: String {
        switch self {
        case .timeout: return "timeout"
        case .serverFailure(let rcode): return "server failure (rcode \(rcode))"
        case .malformed: return "malformed answer"
        case .busy: return "too many lookups in flight"
        case .badName: return "bad name"
        case .resolver(let why): return "resolver: \(why)"
        }
    }
}
