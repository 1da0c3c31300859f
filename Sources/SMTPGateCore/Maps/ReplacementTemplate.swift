/// A regexp: or pcre: result with `$1`..`$9` (also `${1}`, `$(1)`) standing for what the pattern's
/// groups took, and `$$` for a dollar (regexp_table(5) TEXT SUBSTITUTION). Named groups and
/// Postfix's `${1?text}` conditionals are not supported: they are load errors, not literal text.
struct ReplacementTemplate: Sendable, Equatable {
    enum Piece: Sendable, Equatable {
        case text(String)
        case group(Int)
    }

    let pieces: [Piece]

    /// The highest group named; 0 when none is (then the result is constant).
    var highestGroup: Int {
        pieces.reduce(0) { top, piece in
            if case .group(let n) = piece { return max(top, n) }
            return top
        }
    }

    init(parsing text: String) throws(AccessValueError) {
        var pieces = [Piece]()
        var literal = [UInt8]()
        let bytes = Array(text.utf8)
        var i = 0
        while i < bytes.count {
            guard bytes[i] == UInt8(ascii: "$") else {
                literal.append(bytes[i])
                i += 1
                continue
            }
            i += 1
            guard i < bytes.count else { throw Self.bad(text) }
            if bytes[i] == UInt8(ascii: "$") {
                literal.append(bytes[i])
                i += 1
                continue
            }
            let close: UInt8? = bytes[i] == UInt8(ascii: "{") ? UInt8(ascii: "}") : bytes[i] == UInt8(ascii: "(") ? UInt8(ascii: ")") : nil
            if close != nil { i += 1 }
            let nameStart = i
            while i < bytes.count, Self.isNameByte(bytes[i]) { i += 1 }
            let name = bytes[nameStart..<i]
            if let close {
                guard i < bytes.count, bytes[i] == close else { throw Self.bad(text) }
                i += 1
            }
            guard name.count == 1, let digit = name.first, digit >= UInt8(ascii: "1"), digit <= UInt8(ascii: "9") else {
                throw Self.bad(text)
            }
            if !literal.isEmpty {
                pieces.append(.text(String(decoding: literal, as: UTF8.self)))
                literal.removeAll()
            }
            pieces.append(.group(Int(digit - UInt8(ascii: "0"))))
        }
        if !literal.isEmpty { pieces.append(.text(String(decoding: literal, as: UTF8.self))) }
        self.pieces = pieces
    }

    /// The result with each group replaced by `group(n)`.
    func expand(_ group: (Int) -> String) -> String {
        var out = ""
        for piece in pieces {
            switch piece {
            case .text(let s): out += s
            case .group(let n): out += group(n)
            }
        }
        return out
    }

    /// What a group took from the client's text, made fit for a reply or a header: printable ASCII
    /// kept, anything else (control characters, bytes of other scripts) written as '?', as Postfix's
    /// printable() does before text reaches a client.
    static func printable(_ bytes: some Collection<UInt8>) -> String {
        String(decoding: bytes.map { $0 >= 0x20 && $0 < 0x7f ? $0 : UInt8(ascii: "?") }, as: UTF8.self)
    }

    private static func isNameByte(_ b: UInt8) -> Bool {
        (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) || b == UInt8(ascii: "_")
    }

    private static func bad(_ text: String) -> AccessValueError {
        AccessValueError("bad $ in the result \(AccessMapError.quote(text)): write $1 to $9, ${1}, $(1), or $$ for a dollar")
    }
}
