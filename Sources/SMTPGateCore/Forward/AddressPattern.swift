/// One `allow`/`deny` pattern of a `[forward]` listener (or a global one): rinetd's wildcard pattern,
/// or a CIDR prefix, which rinetd does not have.
///
/// rinetd 0.73 (`parse.peg`: `pattern = (hexdigit | '[' | ']' | ':' | '.' | [*?])+`) lets a pattern
/// hold hex digits, `.`, `:`, `[`, `]`, `*` and `?`, and matches it (`match.c`, case-sensitive) against
/// the client address as `getnameinfo(NI_NUMERICHOST)` writes it: `*` is any run of characters,
/// empty included, `?` is exactly one character, everything else must be equal. IPv6 clients are
/// written lower-case and compressed, so `fd77::*` matches and `FD77::*` or `[fd77::1]` never do;
/// SMTPGate keeps those semantics exactly (``ForwardRules/warnings(forward:)`` names such dead
/// patterns). One difference: rinetd listening on `::` saw an IPv4 client as `::ffff:a.b.c.d`,
/// SMTPGate always gives it as `a.b.c.d`, so IPv4 patterns match on every listener.
///
/// A pattern with a `/` is a CIDR prefix (`10.0.0.0/8`, `fd77::/48`) and matches by address value.
public struct AddressPattern: Sendable, Hashable, CustomStringConvertible {
    public enum Kind: Sendable, Hashable {
        /// rinetd's wildcard text pattern.
        case wildcard
        /// A CIDR prefix.
        case prefix(CIDR)
    }

    /// The pattern as written.
    public let text: String
    public let kind: Kind

    static let maxLength = 100

    init(parsing text: String) throws(OptionValueError) {
        let bytes = Array(text.utf8)
        guard !bytes.isEmpty else { throw OptionValueError("an allow/deny pattern must not be empty") }
        guard bytes.count <= Self.maxLength else {
            throw OptionValueError("an allow/deny pattern is at most \(Self.maxLength) characters, got \(bytes.count)")
        }
        if let bad = bytes.first(where: { !Self.allowed($0) }) {
            let hint = Self.isLetter(bad)
                ? " (patterns match the client's address, not its name: write the address)"
                : ""
            throw OptionValueError(
                "an allow/deny pattern may hold only hex digits, '.', ':', '[', ']', '*' and '?', or be a CIDR prefix such as 10.0.0.0/8; "
                    + "'\(LogEscape.escape(text))' has '\(LogEscape.escape([bad]))'\(hint)")
        }
        self.text = text
        if bytes.contains(UInt8(ascii: "/")) {
            guard !bytes.contains(where: { $0 == UInt8(ascii: "*") || $0 == UInt8(ascii: "?") }) else {
                throw OptionValueError("'\(LogEscape.escape(text))' mixes a CIDR prefix with wildcards: write either 10.0.0.0/8 or 10.*")
            }
            do {
                kind = .prefix(try CIDR(parsing: text))
            } catch {
                throw OptionValueError(error.description)
            }
        } else {
            kind = .wildcard
        }
    }

    public var description: String { text }

    /// True when `address` (normalised client text: `a.b.c.d`, or IPv6 as inet_ntop writes it) matches.
    public func matches(_ address: String) -> Bool {
        switch kind {
        case .prefix(let cidr):
            guard let bytes = AddressBytes.parse(address) else { return false }
            return cidr.contains(bytes)
        case .wildcard:
            return Self.globMatch(Array(text.utf8), Array(address.utf8))
        }
    }

    /// True for a pattern that matches every address of at least one family: `*`, `**`, `0.0.0.0/0`, `::/0`.
    public var matchesEverything: Bool {
        switch kind {
        case .prefix(let cidr): return cidr.prefixLength == 0
        case .wildcard: return text.utf8.allSatisfy { $0 == UInt8(ascii: "*") }
        }
    }

    /// `*` and `?` matching without backtracking: the text between stars is placed at its leftmost
    /// occurrence, which finds a match whenever one exists (rinetd's `match.c` does the same).
    /// At most pattern length × address length comparisons.
    static func globMatch(_ p: [UInt8], _ s: [UInt8]) -> Bool {
        let star = UInt8(ascii: "*")
        let segments = p.split(separator: star, omittingEmptySubsequences: false).map(Array.init)
        // No star: one segment that must cover the whole address.
        if segments.count == 1 { return s.count == p.count && segmentMatches(segments[0], s, at: 0) }
        let first = segments[0]
        let last = segments[segments.count - 1]
        guard first.count + last.count <= s.count,
              segmentMatches(first, s, at: 0),
              segmentMatches(last, s, at: s.count - last.count)
        else { return false }
        var pos = first.count
        let end = s.count - last.count
        for segment in segments[1..<(segments.count - 1)] where !segment.isEmpty {
            var found = false
            var start = pos
            while start + segment.count <= end {
                if segmentMatches(segment, s, at: start) { found = true; break }
                start += 1
            }
            guard found else { return false }
            pos = start + segment.count
        }
        return true
    }

    static func segmentMatches(_ segment: [UInt8], _ s: [UInt8], at start: Int) -> Bool {
        guard start >= 0, start + segment.count <= s.count else { return false }
        for (i, c) in segment.enumerated() where c != UInt8(ascii: "?") && c != s[start + i] {
            return false
        }
        return true
    }

    /// The characters before the first wildcard, and whether the pattern has no wildcard at all.
    var literalPrefix: (prefix: [UInt8], exact: Bool) {
        let bytes = Array(text.utf8)
        if let i = bytes.firstIndex(where: { $0 == UInt8(ascii: "*") || $0 == UInt8(ascii: "?") }) {
            return (Array(bytes[..<i]), false)
        }
        return (bytes, true)
    }

    /// True when no address can match both patterns, decided only in simple cases (false means "maybe").
    func isDisjoint(from other: AddressPattern) -> Bool {
        switch (kind, other.kind) {
        case (.prefix(let a), .prefix(let b)):
            guard a.network.count == b.network.count else { return true }
            let n = min(a.prefixLength, b.prefixLength)
            return CIDR.masked(a.network, n) != CIDR.masked(b.network, n)
        case (.prefix(let a), .wildcard):
            return other.isDisjoint(fromPrefix: a)
        case (.wildcard, .prefix(let b)):
            return isDisjoint(fromPrefix: b)
        case (.wildcard, .wildcard):
            let (p, pExact) = literalPrefix
            let (q, qExact) = other.literalPrefix
            let n = min(p.count, q.count)
            if p[..<n] != q[..<n] { return true }
            if pExact, p.count < q.count { return true }
            if qExact, q.count < p.count { return true }
            if pExact, qExact { return p != q }
            return false
        }
    }

    private func isDisjoint(fromPrefix cidr: CIDR) -> Bool {
        if literalPrefix.exact {
            // A literal address matches one address (its text must be canonical to match at all).
            guard let bytes = AddressBytes.parse(text), AddressBytes.format(bytes) == text else { return true }
            return !cidr.contains(bytes)
        }
        // IPv4 text never holds ':'.
        if cidr.network.count == 4, text.utf8.contains(UInt8(ascii: ":")) { return true }
        if let implied = impliedIPv4Prefix {
            let n = min(implied.prefixLength, cidr.prefixLength)
            return cidr.network.count != 4 || CIDR.masked(implied.network, n) != CIDR.masked(cidr.network, n)
        }
        return false
    }

    /// For a wildcard pattern starting with whole IPv4 octets and a dot (`192.0.2.*`, `10.?.*` gives
    /// `10.`), the prefix every address it matches lies in (`192.0.2.0/24`, `10.0.0.0/8`): IPv6 text
    /// cannot start with digits and a dot.
    var impliedIPv4Prefix: CIDR? {
        let (prefix, exact) = literalPrefix
        guard !exact, let lastDot = prefix.lastIndex(of: UInt8(ascii: ".")) else { return nil }
        let octets = prefix[..<lastDot].split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        guard (1...3).contains(octets.count) else { return nil }
        var network: [UInt8] = []
        for o in octets {
            guard (1...3).contains(o.count), o.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
                  o.count == 1 || o.first != 0x30,
                  let v = Int(String(decoding: o, as: UTF8.self)), v <= 255 else { return nil }
            network.append(UInt8(v))
        }
        let length = network.count * 8
        network += [UInt8](repeating: 0, count: 4 - network.count)
        return try? CIDR(parsing: "\(AddressBytes.format(network))/\(length)")
    }

    /// Why this wildcard pattern can never match a normalised client address, or nil.
    var neverMatchesReason: String? {
        guard case .wildcard = kind else { return nil }
        let bytes = Array(text.utf8)
        if bytes.contains(where: { $0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "F") }) {
            return "client addresses are written in lower case: write \(text.lowercased())"
        }
        if bytes.contains(where: { $0 == UInt8(ascii: "[") || $0 == UInt8(ascii: "]") }) {
            return "client addresses are written without brackets"
        }
        if text.hasPrefix("::ffff:"), !text.dropFirst(7).contains(":") {
            return "IPv4 clients are matched as a.b.c.d: write \(text.dropFirst(7))"
        }
        if literalPrefix.exact {
            guard let address = AddressBytes.parse(text) else { return "it is not an address and has no wildcard" }
            let canonical = AddressBytes.format(address)
            if canonical != text { return "client addresses are written as \(canonical)" }
        }
        return nil
    }

    static func allowed(_ b: UInt8) -> Bool {
        switch b {
        case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "a")...UInt8(ascii: "f"),
             UInt8(ascii: "A")...UInt8(ascii: "F"),
             UInt8(ascii: "."), UInt8(ascii: ":"), UInt8(ascii: "["), UInt8(ascii: "]"),
             UInt8(ascii: "*"), UInt8(ascii: "?"), UInt8(ascii: "/"):
            return true
        default:
            return false
        }
    }

    static func isLetter(_ b: UInt8) -> Bool {
        (b >= UInt8(ascii: "a") && b <= UInt8(ascii: "z")) || (b >= UInt8(ascii: "A") && b <= UInt8(ascii: "Z"))
    }
}
