/// Per-customer rate limits (`ratelimit_override cidr:FILE`): business customers with higher limits, or
/// none. Each line is `PREFIX KIND LIMITS`, e.g. `192.0.2.0/24 messages 1000/1h 5000/1d`; LIMITS is `0`
/// (no limit) or windows of the lengths `smtpgate.conf` configures for that kind, so the counters are the
/// same ones and only the limit differs. The most specific prefix holding a line for the kind wins.
public struct RateOverrides: Sendable, Equatable {
    /// Per address length (4 or 16) and prefix length, the masked network and its limits per kind.
    private var byPrefix: [Int: [Int: [[UInt8]: [RateKind: RateLimitSpec]]]] = [:]
    /// Prefix lengths in use per address length, longest first.
    private var lengths: [Int: [Int]] = [:]
    public private(set) var count = 0

    public static let maxLines = 100_000
    public static let maxBytes = 8 << 20

    public init() {}

    /// `limits` are the configured ones: an override may only change the limit of a configured window.
    /// IPv6 clients are counted by `ipv6Prefix`, so a longer IPv6 prefix could never match and is refused.
    public static func parse(_ text: String, file: String, limits: [RateKind: RateLimitSpec],
                             ipv6Prefix: Int = 64) throws(ConfigError) -> RateOverrides {
        guard text.utf8.count <= maxBytes else { throw ConfigError(file: file, line: nil, message: "file is larger than \(maxBytes) bytes") }
        var out = RateOverrides()
        var lineNo = 0
        for raw in text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" }) {
            lineNo += 1
            func fail(_ m: String) -> ConfigError { ConfigError(file: file, line: lineNo, message: m) }
            let line = raw.prefix { $0 != "#" }.trimmingSpaces()
            if line.isEmpty { continue }
            guard lineNo <= maxLines else { throw fail("more than \(maxLines) lines") }
            let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            guard words.count >= 3 else { throw fail("expected PREFIX KIND LIMITS, got \(CIDR.ParseError.show(line))") }
            let prefix: CIDR
            do {
                prefix = try CIDR(parsing: words[0])
            } catch {
                throw fail(error.description)
            }
            if prefix.network.count == 16, prefix.prefixLength > ipv6Prefix {
                throw fail("\(prefix) is longer than ratelimit_ipv6_prefix \(ipv6Prefix), by which IPv6 clients are counted: it could never match")
            }
            guard let kind = RateKind(rawValue: words[1]) else {
                throw fail("unknown kind \(CIDR.ParseError.show(words[1])) (known: \(RateKind.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            let spec: RateLimitSpec
            do {
                spec = try RateLimitSpec.parse(words[2...].joined(separator: " "), defaultSeconds: 0)
            } catch {
                throw fail(error.message)
            }
            let configured = Set(limits[kind]?.windows.map(\.seconds) ?? [])
            guard !configured.isEmpty else { throw fail("\(kind.optionName) is not set in the configuration: there is nothing to override") }
            if kind == .destinations, let w = spec.windows.first(where: { w in limits[kind]?.windows.contains { $0.seconds == w.seconds && w.limit > $0.limit } ?? false }) {
                throw fail("a ratelimit_destinations override can only lower the limit (\(w.limit) is above the configured one): distinct destinations are remembered only up to it")
            }
            for w in spec.windows where !configured.contains(w.seconds) {
                throw fail("\(kind.optionName) has no \(w.seconds) s window in the configuration (it has \(configured.sorted().map { "\($0) s" }.joined(separator: ", ")))")
            }
            let bytes = prefix.network.count
            var entry = out.byPrefix[bytes, default: [:]][prefix.prefixLength, default: [:]][prefix.network, default: [:]]
            guard entry[kind] == nil else { throw fail("\(prefix) \(kind.rawValue) is given twice") }
            entry[kind] = spec
            out.byPrefix[bytes, default: [:]][prefix.prefixLength, default: [:]][prefix.network] = entry
            out.count += 1
        }
        for (bytes, table) in out.byPrefix { out.lengths[bytes] = table.keys.sorted(by: >) }
        return out
    }

    /// The override for `kind` of the client at `address`: nil when none applies, an off spec for no limit.
    public func spec(for address: [UInt8], _ kind: RateKind) -> RateLimitSpec? {
        let a = AddressBytes.unmapped(address)
        guard let table = byPrefix[a.count], let order = lengths[a.count] else { return nil }
        for length in order {
            if let spec = table[length]?[CIDR.masked(a, length)]?[kind] { return spec }
        }
        return nil
    }
}
