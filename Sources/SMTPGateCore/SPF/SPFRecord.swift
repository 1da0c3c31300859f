/// An SPF record's terms (RFC 7208 §4.6, §5, §6). Bounded: a record longer than 4096 bytes or with more
/// than 128 terms is a permerror, as is any syntax error.
enum SPFRecord {
    static let maxBytes = 4096
    static let maxTerms = 128

    struct SyntaxError: Error, Equatable {
        let why: String
    }

    /// Whether a TXT string is an SPF record at all: "v=spf1" alone or followed by a space (§4.5).
    static func isSPF(_ text: String) -> Bool {
        let lower = text.lowercased()
        return lower == "v=spf1" || lower.hasPrefix("v=spf1 ")
    }

    static func parse(_ text: String) throws(SyntaxError) -> [SPFTerm] {
        guard text.utf8.count <= maxBytes else { throw SyntaxError(why: "record longer than \(maxBytes) bytes") }
        let words = text.split(separator: " ").dropFirst()
        guard words.count <= maxTerms else { throw SyntaxError(why: "more than \(maxTerms) terms") }
        var terms: [SPFTerm] = []
        var redirects = 0
        for word in words {
            let t = try term(String(word))
            if case .redirect = t { redirects += 1 }
            terms.append(t)
        }
        guard redirects <= 1 else { throw SyntaxError(why: "more than one redirect modifier") }
        return terms
    }

    static func term(_ word: String) throws(SyntaxError) -> SPFTerm {
        var w = Substring(word)
        if let eq = w.firstIndex(of: "="), !w[..<eq].contains(":"), !w[..<eq].contains("/") {
            let name = w[..<eq].lowercased()
            let value = String(w[w.index(after: eq)...])
            guard name.first?.isLetter == true, name.allSatisfy({ $0.isLetter || $0.isNumber || "-_.".contains($0) }) else {
                throw SyntaxError(why: "bad modifier '\(LogEscape.escape(word))'")
            }
            if name == "redirect" {
                guard !value.isEmpty else { throw SyntaxError(why: "redirect= without a domain") }
                return .redirect(value)
            }
            return .ignored
        }
        var q = SPFTerm.Qualifier.pass
        if let first = w.first, let qual = SPFTerm.Qualifier(rawValue: first) {
            q = qual
            w = w.dropFirst()
        }
        let nameEnd = w.firstIndex(where: { $0 == ":" || $0 == "/" }) ?? w.endIndex
        let name = w[..<nameEnd].lowercased()
        var rest = w[nameEnd...]
        func target() -> String? {
            guard rest.hasPrefix(":") else { return nil }
            let t = rest.dropFirst()
            let end = t.firstIndex(of: "/") ?? t.endIndex
            let spec = String(t[..<end])
            rest = t[end...]
            return spec
        }
        func cidrs() throws(SyntaxError) -> (Int, Int) {
            var v4 = 32, v6 = 128
            if rest.hasPrefix("/"), !rest.hasPrefix("//") {
                let digits = rest.dropFirst().prefix { $0.isNumber }
                guard let n = Int(digits), n <= 32 else { throw SyntaxError(why: "bad ip4 prefix in '\(LogEscape.escape(word))'") }
                v4 = n
                rest = rest.dropFirst(1 + digits.count)
            }
            if rest.hasPrefix("//") {
                let digits = rest.dropFirst(2).prefix { $0.isNumber }
                guard let n = Int(digits), n <= 128 else { throw SyntaxError(why: "bad ip6 prefix in '\(LogEscape.escape(word))'") }
                v6 = n
                rest = rest.dropFirst(2 + digits.count)
            }
            guard rest.isEmpty else { throw SyntaxError(why: "trailing text in '\(LogEscape.escape(word))'") }
            return (v4, v6)
        }
        switch name {
        case "all":
            guard rest.isEmpty else { throw SyntaxError(why: "'all' takes nothing after it") }
            return .all(q)
        case "include", "exists":
            guard let t = target(), !t.isEmpty, rest.isEmpty else { throw SyntaxError(why: "\(name) needs :domain") }
            return name == "include" ? .include(q, t) : .exists(q, t)
        case "a", "mx":
            let t = target()
            if let t, t.isEmpty { throw SyntaxError(why: "\(name): with no domain") }
            let (v4, v6) = try cidrs()
            return name == "a" ? .a(q, t, v4: v4, v6: v6) : .mx(q, t, v4: v4, v6: v6)
        case "ptr":
            let t = target()
            guard rest.isEmpty else { throw SyntaxError(why: "ptr takes no prefix") }
            return .ptr(q, t)
        case "ip4", "ip6":
            guard rest.hasPrefix(":") else { throw SyntaxError(why: "\(name) needs an address") }
            let value = String(rest.dropFirst())
            let parts = value.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
            let bits = name == "ip4" ? 32 : 128
            guard let address = AddressBytes.parse(String(parts[0])), address.count * 8 == bits,
                  let length = parts.count == 2 ? Int(parts[1]) : bits, (0...bits).contains(length),
                  let net = try? CIDR(parsing: "\(AddressBytes.format(CIDR.masked(address, length)))/\(length)") else {
                throw SyntaxError(why: "bad \(name) '\(LogEscape.escape(value))'")
            }
            return .ip(q, net)
        default:
            throw SyntaxError(why: "unknown mechanism '\(LogEscape.escape(String(name)))'")
        }
    }
}
