/// Why a client is locked. The first nine are the events `lock_on` can name, with smtp-gated's words;
/// `admin` and `imported` are only ever set by hand (`smtpgate locks add`) or when taking over an
/// smtp-gated lock directory, so `lock_on` refuses them.
public enum LockCause: String, Sendable, CaseIterable {
    case virus
    case spam
    case maxhost
    case maxident
    case dnsbl
    case regex
    case spf
    case earlytalk
    case ratelimit
    case admin
    case imported

    /// The causes `lock_on` accepts, in the order `show` prints them.
    public static let configurable: [LockCause] = [.virus, .spam, .maxhost, .maxident, .dnsbl, .regex, .spf, .earlytalk, .ratelimit]

    /// smtp-gated's flag values; it accepts one of them as a number in place of the words.
    var legacyBit: Int? {
        switch self {
        case .virus: return 0x0001
        case .spam: return 0x0002
        case .maxhost: return 0x0010
        case .maxident: return 0x0020
        case .dnsbl: return 0x0100
        case .regex: return 0x0200
        case .spf: return 0x0400
        case .earlytalk: return 0x0800
        case .ratelimit: return 0x1000
        case .admin, .imported: return nil
        }
    }

    /// `lock_on`: words separated by commas and/or spaces, any case; `never` or `none` alone means no
    /// locking. Like smtp-gated, `never` next to other words adds nothing, and a single number that is
    /// one of smtp-gated's flag values (`0` = never, `1` = virus, `0x1000` = ratelimit) is accepted so
    /// that an old configuration reads the same.
    public static func parseList(_ v: String) throws(PolicyValueError) -> Set<LockCause> {
        guard v.utf8.count <= 256 else { throw PolicyValueError("lock_on value is too long: \(CIDR.ParseError.show(v))") }
        if let n = legacyNumber(v) {
            if n == 0 { return [] }
            if let cause = configurable.first(where: { $0.legacyBit == n }) { return [cause] }
            throw PolicyValueError("\(n) is not one of smtp-gated's lock_on values; \(known)")
        }
        var set = Set<LockCause>()
        var sawWord = false
        for word in v.utf8.split(whereSeparator: { $0 == UInt8(ascii: ",") || $0 == 0x20 || $0 == 0x09 }) {
            sawWord = true
            let lower = String(decoding: word, as: UTF8.self).lowercased()
            if lower == "never" || lower == "none" { continue }
            guard let cause = LockCause(rawValue: lower), cause.legacyBit != nil else {
                throw PolicyValueError("unknown lock_on cause \(CIDR.ParseError.show(String(decoding: word, as: UTF8.self))); \(known)")
            }
            set.insert(cause)
        }
        guard sawWord else { throw PolicyValueError("lock_on needs a value; \(known)") }
        return set
    }

    /// check-config form: the causes in a fixed order, comma separated, or `never`.
    public static func show(_ set: Set<LockCause>) -> String {
        let words = allCases.filter(set.contains).map(\.rawValue)
        return words.isEmpty ? "never" : words.joined(separator: ",")
    }

    private static var known: String {
        "expected never or a list of " + configurable.map(\.rawValue).joined(separator: ", ")
    }

    /// Decimal or 0x hexadecimal, as smtp-gated's `%i` reads the common cases; at most 8 characters
    /// so that a huge number is refused rather than overflowing.
    private static func legacyNumber(_ v: String) -> Int? {
        let t = Array(v.utf8.drop { $0 == 0x20 || $0 == 0x09 }.reversed().drop { $0 == 0x20 || $0 == 0x09 }.reversed())
        guard !t.isEmpty, t.count <= 8 else { return nil }
        if t.count > 2, t[0] == UInt8(ascii: "0"), t[1] | 0x20 == UInt8(ascii: "x") {
            return Int(String(decoding: t[2...], as: UTF8.self), radix: 16)
        }
        guard t.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
        return Int(String(decoding: t, as: UTF8.self))
    }
}
