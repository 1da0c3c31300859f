/// One term of an SPF record (RFC 7208 §4.6.1), its domain-spec still unexpanded.
enum SPFTerm: Sendable, Equatable {
    enum Qualifier: Character, Sendable {
        case pass = "+", fail = "-", softfail = "~", neutral = "?"

        var result: SPFResult {
            switch self {
            case .pass: return .pass
            case .fail: return .fail
            case .softfail: return .softfail
            case .neutral: return .neutral
            }
        }
    }

    case all(Qualifier)
    case include(Qualifier, String)
    case a(Qualifier, String?, v4: Int, v6: Int)
    case mx(Qualifier, String?, v4: Int, v6: Int)
    case ptr(Qualifier, String?)
    case ip(Qualifier, CIDR)
    case exists(Qualifier, String)
    case redirect(String)
    /// exp= and unknown modifiers: ignored (§6).
    case ignored

    /// Mechanisms and modifiers that count against the limit of 10 DNS lookups (§4.6.4).
    var countsLookup: Bool {
        switch self {
        case .include, .a, .mx, .ptr, .exists, .redirect: return true
        case .all, .ip, .ignored: return false
        }
    }
}
