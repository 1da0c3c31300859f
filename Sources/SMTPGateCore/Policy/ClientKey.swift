/// Who a lock or a rate counter is for: the real client behind the NAT. An IPv4 client is its full
/// address; an IPv6 client is its prefix of `ipv6Prefix` bits (`lock_ipv6_prefix`,
/// `ratelimit_ipv6_prefix`, 64 by default), because a customer is handed a whole /64 and could otherwise
/// step around a lock by changing the interface identifier. An ident (REMOTE mode, `max_per_ident`)
/// narrows the key to one user of that address.
///
/// The address is held as two words rather than an array so that hashing a key and storing millions
/// of them costs no allocation.
public struct ClientKey: Sendable, Hashable, Comparable, CustomStringConvertible {
    static let maxIdentBytes = 64

    private let high: UInt64
    private let low: UInt64
    /// 32 for IPv4; for IPv6 the prefix the address was masked to.
    public let prefixLength: UInt8
    private let isIPv4: Bool
    public let ident: String?

    /// `address` is 4 or 16 bytes (a peer address from a socket or the helper); an IPv4-mapped IPv6
    /// address counts as IPv4. `ipv6Prefix` is clamped to 1...128. An ident that could not be written
    /// back as text (too long, spaces, `@`, control bytes) is made printable so that `description`
    /// still parses: it comes from an ident answer, which the client may influence.
    public init(address: [UInt8], ipv6Prefix: Int, ident: String? = nil) {
        let a = AddressBytes.unmapped(address)
        precondition(a.count == 4 || a.count == 16, "a client address is 4 or 16 bytes")
        if a.count == 4 {
            isIPv4 = true
            prefixLength = 32
            high = 0
            low = Self.word(a[0..<4])
        } else {
            isIPv4 = false
            let bits = min(max(ipv6Prefix, 1), 128)
            prefixLength = UInt8(bits)
            let masked = CIDR.masked(a, bits)
            high = Self.word(masked[0..<8])
            low = Self.word(masked[8..<16])
        }
        self.ident = ident.flatMap(Self.cleanIdent)
    }

    /// `10.0.0.5`, `2001:db8::1` (masked to `ipv6Prefix`), `2001:db8:1::/64` (only a prefix of exactly
    /// `ipv6Prefix` bits: a key of another length would silently mean a different set of clients), and
    /// each of them as `IDENT@ADDRESS`.
    public init(parsing text: String, ipv6Prefix: Int) throws(ClientKeyError) {
        var rest = Substring(text)
        var ident: String?
        if let at = text.utf8.firstIndex(of: UInt8(ascii: "@")) {
            let name = text[text.startIndex..<at]
            guard Self.isValidIdent(name) else { throw .badIdent(text) }
            ident = String(name)
            rest = text[text.index(after: at)...]
        }
        let parts = rest.split(separator: "/", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count <= 2, let address = AddressBytes.parse(String(parts[0])) else { throw .badAddress(text) }
        let unmapped = AddressBytes.unmapped(address)
        if parts.count == 2 {
            let digits = parts[1]
            guard unmapped.count == 16 else { throw .badAddress(text) }
            guard !digits.isEmpty, digits.utf8.count <= 3, digits.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
                  Int(digits) == ipv6Prefix else { throw .wrongPrefixLength(text, expected: ipv6Prefix) }
            guard CIDR.masked(unmapped, ipv6Prefix) == unmapped else { throw .hostBitsSet(text) }
        }
        self.init(address: unmapped, ipv6Prefix: ipv6Prefix, ident: ident)
    }

    /// A key as the store or another proxy wrote it, perhaps under another `lock_ipv6_prefix`: an IPv6
    /// prefix of any length from 1 to 128 is taken, one longer than `ipv6Prefix` widened to it (the
    /// configuration says a customer is that wide), one shorter kept as it is (it was locked as a whole,
    /// and `LockTable` lets it cover the keys inside it). Everything else as `init(parsing:ipv6Prefix:)`.
    public init(stored text: String, ipv6Prefix: Int) throws(ClientKeyError) {
        let bits = min(max(ipv6Prefix, 1), 128)
        guard let slash = text.utf8.lastIndex(of: UInt8(ascii: "/")) else {
            try self.init(parsing: text, ipv6Prefix: bits)
            return
        }
        let digits = text[text.index(after: slash)...]
        guard !digits.isEmpty, digits.utf8.count <= 3, digits.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
              let length = Int(digits), (1...128).contains(length) else { throw .badAddress(text) }
        let exact = try ClientKey(parsing: text, ipv6Prefix: length)
        self = length > bits ? ClientKey(address: exact.address, ipv6Prefix: bits, ident: exact.ident) : exact
    }

    /// True for an IPv6 key (a prefix), false for IPv4.
    public var isIPv6: Bool { !isIPv4 }

    /// The same client's key at a shorter IPv6 prefix (`bits` below `prefixLength`); self otherwise.
    public func widened(to bits: Int) -> ClientKey {
        guard !isIPv4, bits < Int(prefixLength) else { return self }
        return ClientKey(address: address, ipv6Prefix: bits, ident: ident)
    }

    /// 4 bytes for IPv4, 16 (already masked) for IPv6.
    public var address: [UInt8] {
        isIPv4 ? Self.bytes(low, count: 4) : Self.bytes(high, count: 8) + Self.bytes(low, count: 8)
    }

    /// `10.0.0.5`, `2001:db8:1::/64`, `bob@10.0.0.5`; `init(parsing:)` reads it back.
    public var description: String {
        let host = isIPv4 ? AddressBytes.format(address) : "\(AddressBytes.format(address))/\(prefixLength)"
        return ident.map { "\($0)@\(host)" } ?? host
    }

    /// True when the key's address (for IPv6 the network address of its prefix) is inside `list`.
    public func isExempt(_ list: AllowList) -> Bool {
        list.allows(address)
    }

    /// The address alone: a lock on it covers every ident behind it.
    public var withoutIdent: ClientKey { ClientKey(address: address, ipv6Prefix: Int(prefixLength)) }

    public static func < (a: ClientKey, b: ClientKey) -> Bool {
        a.description < b.description
    }

    static func isValidIdent<S: StringProtocol>(_ s: S) -> Bool {
        !s.isEmpty && s.utf8.count <= maxIdentBytes && s.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7f && $0 != UInt8(ascii: "@") }
    }

    private static func cleanIdent(_ s: String) -> String? {
        if isValidIdent(s) { return s }
        let bytes = s.utf8.prefix(maxIdentBytes).map { $0 > 0x20 && $0 < 0x7f && $0 != UInt8(ascii: "@") ? $0 : UInt8(ascii: "?") }
        return bytes.isEmpty ? nil : String(decoding: bytes, as: UTF8.self)
    }

    private static func word(_ bytes: ArraySlice<UInt8>) -> UInt64 {
        bytes.reduce(0) { $0 << 8 | UInt64($1) }
    }

    private static func bytes(_ word: UInt64, count: Int) -> [UInt8] {
        (0..<count).map { UInt8(truncatingIfNeeded: word >> (8 * (count - 1 - $0))) }
    }
}
