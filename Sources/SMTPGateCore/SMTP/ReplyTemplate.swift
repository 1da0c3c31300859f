/// A `msg_*` text as the file wrote it: printable ASCII with `$name` or `${name}` for a value of the
/// reply (`$$` for a dollar sign). It goes into SMTP replies, so it is one line and bounded, and what a
/// variable brings in is made printable and cut too.
public struct ReplyTemplate: Sendable, Equatable {
    enum Part: Sendable, Equatable {
        case text(String)
        case variable(String)
    }

    public let source: String
    let parts: [Part]

    static let maxSource = 300
    static let maxValue = 100
    /// With the code, the enhanced code and a proxy name, a reply line stays within RFC 5321's 512 octets.
    static let maxRendered = 320

    /// What any reply text must be, one with a reply here or not.
    static func checkText(_ v: String) throws(OptionValueError) {
        guard !v.isEmpty, v.utf8.count <= maxSource, v.utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7f }) else {
            throw OptionValueError("expected reply text of printable ASCII, 1 to \(maxSource) characters, got '\(LogEscape.escape(v))'")
        }
    }

    init(parsing v: String, for key: ReplyText) throws(OptionValueError) {
        try Self.checkText(v)
        var parts: [Part] = []
        var literal = ""
        let s = Array(v.utf8)
        var i = 0
        func isNameByte(_ b: UInt8) -> Bool { (0x61...0x7a).contains(b) || b == 0x5f }
        while i < s.count {
            guard s[i] == UInt8(ascii: "$") else {
                literal.unicodeScalars.append(Unicode.Scalar(s[i]))
                i += 1
                continue
            }
            if i + 1 < s.count, s[i + 1] == UInt8(ascii: "$") {
                literal += "$"
                i += 2
                continue
            }
            var j = i + 1
            let braced = j < s.count && s[j] == UInt8(ascii: "{")
            if braced { j += 1 }
            let start = j
            while j < s.count, isNameByte(s[j]) { j += 1 }
            let name = String(decoding: s[start..<j], as: UTF8.self)
            if braced {
                guard j < s.count, s[j] == UInt8(ascii: "}") else {
                    throw OptionValueError("'${' at column \(i + 1) is not closed by '}' after a variable name")
                }
                j += 1
            }
            guard !name.isEmpty else {
                throw OptionValueError("'$' at column \(i + 1) starts no variable; write $$ for a dollar sign")
            }
            guard key.variables.contains(name) else {
                let known = key.variables.isEmpty ? "it has none" : "known: " + key.variables.map { "$" + $0 }.joined(separator: ", ")
                throw OptionValueError("\(key.optionName) has no variable $\(name) (\(known))")
            }
            if !literal.isEmpty { parts.append(.text(literal)) }
            literal = ""
            parts.append(.variable(name))
            i = j
        }
        if !literal.isEmpty { parts.append(.text(literal)) }
        self.source = v
        self.parts = parts
    }

    /// The text with the reply's values in; a value a reply does not have reads `-`.
    func render(_ values: [String: String]) -> String {
        var out = ""
        for part in parts {
            switch part {
            case .text(let t): out += t
            case .variable(let name): out += Self.printable(values[name] ?? "-")
            }
        }
        guard out.utf8.count > Self.maxRendered else { return out }
        return String(decoding: out.utf8.prefix(Self.maxRendered), as: UTF8.self)
    }

    /// Client text (a sender, a HELO name) can reach a value: anything but printable ASCII becomes `?`.
    static func printable(_ v: String) -> String {
        var s = String.UnicodeScalarView()
        for u in v.unicodeScalars.prefix(maxValue) {
            s.append(u.value >= 0x20 && u.value < 0x7f ? u : "?")
        }
        return String(s)
    }
}
