/// RFC 7208 §7 macro expansion of a domain-spec, bounded (the result is a DNS name: at most 253 bytes
/// after the §7.3 truncation from the left).
enum SPFMacro {
    struct Context: Sendable {
        var sender: String
        var domain: String
        var ip: [UInt8]
        var helo: String
    }

    /// nil on a syntax error (a permerror).
    static func expand(_ spec: String, _ c: Context) -> String? {
        var out = ""
        var i = spec.startIndex
        while i < spec.endIndex {
            let ch = spec[i]
            guard ch == "%" else {
                out.append(ch)
                i = spec.index(after: i)
                continue
            }
            let next = spec.index(after: i)
            guard next < spec.endIndex else { return nil }
            switch spec[next] {
            case "%": out.append("%")
            case "_": out.append(" ")
            case "-": out.append("%20")
            case "{":
                guard let close = spec[next...].firstIndex(of: "}") else { return nil }
                guard let v = macro(spec[spec.index(after: next)..<close], c) else { return nil }
                out += v
                i = spec.index(after: close)
                guard out.utf8.count <= 4096 else { return nil }
                continue
            default:
                return nil
            }
            i = spec.index(after: next)
        }
        // §7.3: a name too long for DNS loses labels from the left.
        while out.utf8.count > 253, let dot = out.firstIndex(of: ".") { out = String(out[out.index(after: dot)...]) }
        return out
    }

    private static func macro(_ body: Substring, _ c: Context) -> String? {
        guard let letter = body.first?.lowercased().first else { return nil }
        var rest = body.dropFirst()
        let digits = rest.prefix { $0.isNumber }
        rest = rest.dropFirst(digits.count)
        var reverse = false
        if rest.first == "r" || rest.first == "R" {
            reverse = true
            rest = rest.dropFirst()
        }
        guard rest.allSatisfy({ ".-+,/_=".contains($0) }) else { return nil }
        let delimiters = rest.isEmpty ? Set<Character>(["."]) : Set(rest)
        let value: String
        let local = c.sender.lastIndex(of: "@").map { String(c.sender[..<$0]) } ?? "postmaster"
        let senderDomain = c.sender.lastIndex(of: "@").map { String(c.sender[c.sender.index(after: $0)...]) } ?? c.sender
        switch letter {
        case "s": value = c.sender
        case "l": value = local
        case "o": value = senderDomain
        case "d": value = c.domain
        case "i": value = c.ip.count == 4 ? c.ip.map(String.init).joined(separator: ".") : nibbles(c.ip)
        case "p": value = "unknown"
        case "v": value = c.ip.count == 4 ? "in-addr" : "ip6"
        case "h": value = c.helo
        default: return nil
        }
        var parts = value.split(whereSeparator: { delimiters.contains($0) }).map(String.init)
        if reverse { parts.reverse() }
        if let n = Int(digits) {
            guard n > 0 else { return nil }
            parts = Array(parts.suffix(n))
        }
        return parts.joined(separator: ".")
    }

    private static func nibbles(_ b: [UInt8]) -> String {
        b.flatMap { [String($0 >> 4, radix: 16), String($0 & 15, radix: 16)] }.joined(separator: ".")
    }
}
