/// One entry of `dnsbl`: a zone, the answers that count (`=FILTER`) and what a listing weighs (`*WEIGHT`),
/// in postscreen's syntax `ZONE[=FILTER][*WEIGHT]`. smtp-gated's plain zone names are entries of weight 1.
public struct DNSBLSite: Sendable, Equatable, CustomStringConvertible {
    public let zone: String
    public let filter: DNSBLFilter?
    public let weight: Int

    public static let maxSites = 32
    public static let weights = -100...100
    /// The longest reversed address (an IPv6 address's 32 nibbles and dots) is 64 characters, and the
    /// whole name at most 253.
    public static let maxZoneLength = 253 - 64

    public init(zone: String, filter: DNSBLFilter? = nil, weight: Int = 1) {
        self.zone = zone
        self.filter = filter
        self.weight = weight
    }

    /// True when this entry counts the answer `address` (an A record of its zone).
    public func counts(_ address: [UInt8]) -> Bool {
        filter?.matches(address) ?? DNSBLFilter.countsByDefault(address)
    }

    public init(parsing word: Substring) throws(PolicyValueError) {
        var rest = word
        var weight = 1
        if let star = rest.lastIndex(of: "*") {
            let w = rest[rest.index(after: star)...]
            let digits = w.hasPrefix("-") ? w.dropFirst() : w
            guard !digits.isEmpty, digits.utf8.count <= 3, digits.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
                  let n = Int(w), Self.weights.contains(n) else {
                throw PolicyValueError("DNSBL weight \(CIDR.ParseError.show(String(w))) in \(CIDR.ParseError.show(String(word))): expected a whole number from -100 to 100")
            }
            weight = n
            rest = rest[..<star]
        }
        var filter: DNSBLFilter?
        if let eq = rest.firstIndex(of: "=") {
            filter = try DNSBLFilter(parsing: rest[rest.index(after: eq)...])
            rest = rest[..<eq]
        }
        var zone = String(rest).lowercased()
        if zone.hasSuffix(".") { zone.removeLast() }
        guard zone.utf8.count <= Self.maxZoneLength, DNSName.isValid(zone), !zone.contains("*"), !zone.contains("=") else {
            throw PolicyValueError("DNSBL zone \(CIDR.ParseError.show(String(rest))) is not a DNS name of at most \(Self.maxZoneLength) characters")
        }
        self.init(zone: zone, filter: filter, weight: weight)
    }

    /// `dnsbl`: entries separated by commas and/or spaces; `none` (or nothing) is off.
    public static func parseList(_ v: String) throws(PolicyValueError) -> [DNSBLSite] {
        guard v.utf8.count <= 8192 else { throw PolicyValueError("dnsbl value is too long (at most 8192 bytes)") }
        let words = Substring(v).split(whereSeparator: { $0 == "," || $0 == " " || $0 == "\t" })
        if words.isEmpty || (words.count == 1 && words[0].lowercased() == "none") { return [] }
        guard words.count <= maxSites else { throw PolicyValueError("dnsbl has \(words.count) sites; at most \(maxSites)") }
        var sites: [DNSBLSite] = []
        for w in words { sites.append(try DNSBLSite(parsing: w)) }
        return sites
    }

    public static func show(_ sites: [DNSBLSite]) -> String {
        sites.isEmpty ? "none" : sites.map(\.description).joined(separator: " ")
    }

    public var description: String {
        zone + (filter.map { "=\($0)" } ?? "") + (weight == 1 ? "" : "*\(weight)")
    }
}
