/// The record types the proxy asks for (RFC 1035, RFC 3596), by their numbers on the wire.
public enum DNSType: Int32, Sendable, CaseIterable {
    case a = 1
    case ptr = 12
    case mx = 15
    case txt = 16
    case aaaa = 28
}

extension DNSType {
    /// The type's mnemonic in lower case, as a metric label.
    public var name: String {
        switch self {
        case .a: return "a"
        case .ptr: return "ptr"
        case .mx: return "mx"
        case .txt: return "txt"
        case .aaaa: return "aaaa"
        }
    }
}
