/// One entry of a cidr: table, kept in file order.
enum CIDRRule: Sendable {
    /// `pattern action` (`!pattern action`: when the address does not match).
    case match(CIDR, negated: Bool, AccessAction)
    /// `if pattern` (or `if !pattern`) up to its `endif`, at index `end` of the rule list: when the
    /// address does not match, the rules inside are skipped.
    case block(CIDR, negated: Bool, end: Int)
    case endif

    /// A rule applies only to an address of its own family, negated or not (an IPv4 pattern says
    /// nothing about an IPv6 client), as cidr_table(5) behaves.
    static func applies(_ net: CIDR, negated: Bool, to address: [UInt8]) -> Bool {
        net.network.count == address.count && net.contains(address) != negated
    }
}
