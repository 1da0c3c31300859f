/// An address prefix for the allow list: `10.0.0.0/8`, `fd77:2::/64`, or a bare address (a /32 or /128).
/// Host bits after the prefix are refused (`10.0.0.1/8` is almost always a typo), as is anything that
/// is not exactly an address, one `/`, and a decimal length in range.
public struct CIDR: Sendable, Hashable, CustomStringConvertible {
    public let network: [UInt8]
    public let prefixLength: Int

    public enum ParseError: Error, Equatable, CustomStringConvertible {
        case badAddress(String)
        case badPrefixLength(String)
        case hostBitsSet(String)

        public var description: String {
            switch self {
            case .badAddress(let s): return "not an IPv4 or IPv6 address or CIDR prefix: \(Self.show(s))"
            case .badPrefixLength(let s): return "bad prefix length in \(Self.show(s))"
            case .hostBitsSet(let s): return "\(Self.show(s)) has bits set after the prefix length (did you mean the network address?)"
            }
        }

        public static func show(_ s: String) -> String {
            "\"" + String(s.unicodeScalars.prefix(80).map { $0.value >= 0x20 && $0.value < 0x7f ? Character($0) : "?" }) + "\""
        }
    }

    public init(parsing text: String) throws(ParseError) {
        let parts = text.split(separator: "/", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count <= 2 else { throw .badPrefixLength(text) }
        guard let address = AddressBytes.parse(String(parts[0])) else { throw .badAddress(text) }
        let bits = address.count * 8
        var length = bits
        if parts.count == 2 {
            let digits = parts[1]
            guard !digits.isEmpty, digits.utf8.count <= 3,
                  digits.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
                  let n = Int(digits), n <= bits else { throw .badPrefixLength(text) }
            length = n
        }
        guard Self.masked(address, length) == address else { throw .hostBitsSet(text) }
        // An IPv4-mapped prefix (::ffff:10.0.0.0/104) is kept as the IPv4 prefix it means, since
        // sources are compared unmapped.
        if address.count == 16, length >= 96, AddressBytes.unmapped(address).count == 4 {
            network = AddressBytes.unmapped(address)
            prefixLength = length - 96
        } else {
            network = address
            prefixLength = length
        }
    }

    /// True when `address` (4 or 16 bytes; an IPv4-mapped IPv6 address counts as IPv4) is inside.
    public func contains(_ address: [UInt8]) -> Bool {
        let a = AddressBytes.unmapped(address)
        guard a.count == network.count else { return false }
        return Self.masked(a, prefixLength) == network
    }

    public var description: String { "\(AddressBytes.format(network))/\(prefixLength)" }

    static func masked(_ a: [UInt8], _ length: Int) -> [UInt8] {
        var out = a
        for i in 0..<out.count {
            let keep = min(max(length - i * 8, 0), 8)
            out[i] &= keep == 0 ? 0 : UInt8(truncatingIfNeeded: 0xff << (8 - keep))
        }
        return out
    }
}
