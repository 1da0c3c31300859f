/// `auth_skip`: checks an authenticated client is spared, as smtp-gated names them.
public enum AuthSkip: String, Sendable, Hashable, CaseIterable, Comparable {
    /// A listed client is not refused at connect; it is refused at MAIL unless it has authenticated.
    case dnsbl
    case spf
    case regex

    public static func < (a: Self, b: Self) -> Bool { a.rawValue < b.rawValue }

    /// `none` or a comma/space list of names.
    static func parseList(_ v: String) throws(OptionValueError) -> Set<AuthSkip> {
        let words = v.split(whereSeparator: { $0 == "," || $0 == " " || $0 == "\t" }).map { $0.lowercased() }
        if words == ["none"] { return [] }
        var out: Set<AuthSkip> = []
        for w in words {
            guard let s = AuthSkip(rawValue: w) else {
                throw OptionValueError("unknown auth_skip check '\(LogEscape.escape(w))'; expected none or a list of dnsbl, spf, regex")
            }
            out.insert(s)
        }
        return out
    }
}
