/// What a rate limit counts; the option is `ratelimit_<raw value>`.
public enum RateKind: String, Sendable, CaseIterable {
    case connections
    case messages
    case recipients
    case bytes
    case mailfromRejects = "mailfrom_rejects"
    case rcpttoRejects = "rcptto_rejects"
    case authRejects = "auth_rejects"
    /// Distinct destination MTAs, counted by `DistinctCounter` rather than summed.
    case destinations

    public var optionName: String { "ratelimit_" + rawValue }

    /// Position in `allCases`, so that tables can index an array instead of hashing.
    var ordinal: Int {
        switch self {
        case .connections: return 0
        case .messages: return 1
        case .recipients: return 2
        case .bytes: return 3
        case .mailfromRejects: return 4
        case .rcpttoRejects: return 5
        case .authRejects: return 6
        case .destinations: return 7
        }
    }
}
