/// Which A answers of a blocklist count as a listing: postscreen's `d.d.d.d` pattern, each octet a number
/// or `[...]` of `;`-separated numbers and `N..M` ranges (`127.0.0.[2..11]`, `127.0.[0..255].[2;4]`).
public struct DNSBLFilter: Sendable, Equatable, CustomStringConvertible {
    /// Per octet, the ranges it may fall in.
    public let octets: [[ClosedRange<UInt8>]]

    /// Without a filter: anything in 127.0.0.0/8 but 127.0.0.1 (never a listing, RFC 5782 §5) and
    /// 127.255.255.0/24, where lists such as Spamhaus answer query errors ("public resolver", "rate
    /// limited"), not listings.
    public static func countsByDefault(_ a: [UInt8]) -> Bool {
        guard a.count == 4, a[0] == 127 else { return false }
        if a == [127, 0, 0, 1] { return false }
        return !(a[1] == 255 && a[2] == 255)
    }

    public func matches(_ a: [UInt8]) -> Bool {
        guard a.count == 4 else { return false }
        return zip(octets, a).allSatisfy { ranges, b in ranges.contains { $0.contains(b) } }
    }

    /// At most 4 octets of at most 16 items each: a filter is short, and reading it is bounded.
    static let maxItems = 16

    public init(parsing text: Substring) throws(PolicyValueError) {
        let parts = Self.splitOctets(text)
        guard parts.count == 4 else {
            throw PolicyValueError("DNSBL filter \(CIDR.ParseError.show(String(text))) is not four octets d.d.d.d")
        }
        var octets: [[ClosedRange<UInt8>]] = []
        for part in parts {
            octets.append(try Self.octet(part, in: text))
        }
        self.octets = octets
    }

    /// Dots inside `[...]` belong to ranges (`[2..11]`), so only the dots outside brackets split.
    private static func splitOctets(_ text: Substring) -> [Substring] {
        var parts: [Substring] = []
        var start = text.startIndex
        var depth = 0
        var i = text.startIndex
        while i < text.endIndex {
            let c = text[i]
            if c == "[" { depth += 1 } else if c == "]" { depth -= 1 } else if c == ".", depth == 0 {
                parts.append(text[start..<i])
                start = text.index(after: i)
            }
            i = text.index(after: i)
        }
        parts.append(text[start..<text.endIndex])
        return parts
    }

    private static func octet(_ part: Substring, in whole: Substring) throws(PolicyValueError) -> [ClosedRange<UInt8>] {
        func bad(_ why: String) -> PolicyValueError {
            PolicyValueError("DNSBL filter \(CIDR.ParseError.show(String(whole))): \(why)")
        }
        if let n = number(part) { return [n...n] }
        guard part.hasPrefix("["), part.hasSuffix("]"), part.count >= 3 else {
            throw bad("\(CIDR.ParseError.show(String(part))) is neither a number from 0 to 255 nor [list]")
        }
        let items = part.dropFirst().dropLast().split(separator: ";", omittingEmptySubsequences: false)
        guard items.count <= maxItems else { throw bad("more than \(maxItems) items in one octet") }
        var ranges: [ClosedRange<UInt8>] = []
        for item in items {
            if let n = number(item) {
                ranges.append(n...n)
                continue
            }
            guard let dots = item.range(of: ".."), let lo = number(item[..<dots.lowerBound]),
                  let hi = number(item[dots.upperBound...]) else {
                throw bad("\(CIDR.ParseError.show(String(item))) is neither a number from 0 to 255 nor N..M")
            }
            guard lo <= hi else { throw bad("the range \(lo)..\(hi) is empty") }
            ranges.append(lo...hi)
        }
        return ranges
    }

    private static func number(_ s: Substring) -> UInt8? {
        guard !s.isEmpty, s.utf8.count <= 3, s.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
        return UInt8(s)
    }

    public var description: String {
        octets.map { ranges in
            if ranges.count == 1, ranges[0].lowerBound == ranges[0].upperBound { return String(ranges[0].lowerBound) }
            return "[" + ranges.map { $0.lowerBound == $0.upperBound ? "\($0.lowerBound)" : "\($0.lowerBound)..\($0.upperBound)" }
                .joined(separator: ";") + "]"
        }.joined(separator: ".")
    }
}
