/// Postfix's tests of HELO names and addresses, for the restrictions that name them.
enum HostNames {
    /// A host name of letters, digits, hyphens and dots (labels not starting or ending with a hyphen, at
    /// most 63 bytes, 255 in all), or an address literal `[1.2.3.4]` / `[IPv6:…]`.
    static func isValidHelo(_ name: String) -> Bool {
        if name.hasPrefix("["), name.hasSuffix("]") {
            var inner = String(name.dropFirst().dropLast())
            if inner.lowercased().hasPrefix("ipv6:") { inner = String(inner.dropFirst(5)) }
            return AddressBytes.parse(inner) != nil
        }
        var n = Substring(name)
        if n.hasSuffix(".") { n = n.dropLast() }
        guard !n.isEmpty, n.utf8.count <= 255 else { return false }
        return n.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { label in
            let b = Array(label.utf8)
            guard !b.isEmpty, b.count <= 63, b.first != UInt8(ascii: "-"), b.last != UInt8(ascii: "-") else { return false }
            return b.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 | 0x20 >= 0x61 && $0 | 0x20 <= 0x7a) || $0 == 0x2d || $0 == 0x5f }
        }
    }

    /// Postfix's "fully-qualified": a dot inside the name (an address literal counts as qualified).
    static func isFullyQualified(_ name: String) -> Bool {
        if name.hasPrefix("[") { return true }
        var n = Substring(name)
        if n.hasSuffix(".") { n = n.dropLast() }
        return n.contains(".")
    }

    /// `user@domain.tld`, or `user@[address]`.
    static func isFullyQualifiedAddress(_ address: String) -> Bool {
        guard let domain = domain(of: address) else { return false }
        return isFullyQualified(domain)
    }

    /// The part after the last `@`, lower-cased; nil without one (or for an address literal, which has no
    /// DNS name to look up).
    static func domain(of address: String) -> String? {
        guard let at = address.lastIndex(of: "@") else { return nil }
        let d = address[address.index(after: at)...]
        guard !d.isEmpty, !d.hasPrefix("[") else { return nil }
        return d.lowercased()
    }
}
