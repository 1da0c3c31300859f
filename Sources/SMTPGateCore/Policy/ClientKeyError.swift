/// Why a client key (`10.0.0.5`, `2001:db8:1::/64`, `bob@10.0.0.5`) was refused. The input is shown
/// quoted and made printable, since it may come from a command line or a lock directory.
public enum ClientKeyError: Error, Equatable, CustomStringConvertible {
    case badAddress(String)
    case wrongPrefixLength(String, expected: Int)
    case hostBitsSet(String)
    case badIdent(String)

    public var description: String {
        switch self {
        case .badAddress(let s):
            return "not an IPv4 address, IPv6 address or IPv6 prefix: \(CIDR.ParseError.show(s))"
        case .wrongPrefixLength(let s, let expected):
            return "\(CIDR.ParseError.show(s)) must be a /\(expected) prefix (the configured IPv6 client prefix)"
        case .hostBitsSet(let s):
            return "\(CIDR.ParseError.show(s)) has bits set after the prefix length (did you mean the network address?)"
        case .badIdent(let s):
            return "bad ident in \(CIDR.ParseError.show(s)): expected 1 to \(ClientKey.maxIdentBytes) printable ASCII characters without space or @"
        }
    }
}
