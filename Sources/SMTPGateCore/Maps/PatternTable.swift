/// A regexp_table(5) or pcre_table(5) file: `/pattern/flags result`, `!/pattern/flags result`, and
/// `if /pattern/flags` (or `if !/pattern/`) ... `endif` blocks nested at most `AccessMaps.maxNesting`
/// deep, tried in file order on the whole key, the first match winning. Any non-alphanumeric
/// character other than whitespace and backslash may delimit a pattern; a backslash escapes the
/// delimiter and stays in the pattern. Results may substitute groups (`ReplacementTemplate`).
///
/// Both types are compiled by PCRE2 with Postfix's default flags, which the flags after the pattern
/// toggle. pcre: i (caseless, on), m (multi-line, off), s (dot matches newline, on), x (extended,
/// off), A (anchored, off), E ($ at the very end only, off), U (ungreedy, off); X (PCRE's EXTRA) does
/// not exist in PCRE2 and is an error, as Postfix says it is unsupported there. regexp: i (on) and m
/// (newline-sensitive ^ $ and dot, off); its x would switch POSIX extended syntax off, to basic
/// syntax, which is not supported. Postfix compiles regexp: as POSIX ERE; PCRE reads ordinary ERE
/// the same (so `.` matches a newline and `$` only the very end, as in POSIX), but differs in that
/// alternation takes the first alternative that matches rather than the longest match (which can
/// change what `$1` takes), backslash sequences such as `\d` and `\w` are special, and GNU's `\<`
/// `\>` word boundaries are literal characters. The legacy `/pattern1/!/pattern2/ result` form is an
/// error; write `if !/pattern2/`, the rule, `endif`.
struct PatternTable: AccessTable {
    let kind: AccessTableKind
    let source: String
    private let rules: [PatternRule]

    init(bytes: [UInt8], file: String, source: String, kind: AccessTableKind) throws(AccessMapError) {
        var rules = [PatternRule]()
        var open = [(index: Int, line: Int)]()
        let lines = try MapSource.lines(bytes, file: file)
        if lines.count > AccessMaps.maxPatternRules {
            throw AccessMapError(file: file, line: lines[AccessMaps.maxPatternRules].number,
                                 message: "more than \(AccessMaps.maxPatternRules) patterns (each lookup tries them in turn): use texthash: or cidr: for long lists")
        }
        for line in lines {
            do throws(AccessValueError) {
                let text = Substring(line.text)
                if let rest = Self.keyword("endif", text) {
                    guard MapSource.trimmed(rest).isEmpty else {
                        throw AccessValueError("unexpected text after endif: \(AccessMapError.quote(MapSource.trimmed(rest)))")
                    }
                    guard let top = open.popLast() else { throw AccessValueError("endif without if") }
                    rules[top.index] = Self.closed(rules[top.index], end: rules.count)
                    rules.append(.endif)
                } else if let rest = Self.keyword("if", text) {
                    let (regex, negated, after) = try Self.pattern(rest, kind: kind)
                    guard MapSource.trimmed(after).isEmpty else {
                        throw AccessValueError("unexpected text after the if pattern: \(AccessMapError.quote(MapSource.trimmed(after)))")
                    }
                    guard open.count < AccessMaps.maxNesting else {
                        throw AccessValueError("if blocks nested more than \(AccessMaps.maxNesting) deep")
                    }
                    open.append((rules.count, line.number))
                    rules.append(.block(regex, negated: negated, end: -1, line: line.number))
                } else {
                    let (regex, negated, after) = try Self.pattern(text, kind: kind)
                    let result = try Self.result(MapSource.trimmed(after), regex: regex, negated: negated)
                    rules.append(.match(regex, negated: negated, result, line: line.number))
                }
            } catch {
                throw AccessMapError(file: file, line: line.number, message: error.message)
            }
        }
        if let unclosed = open.last {
            throw AccessMapError(file: file, line: unclosed.line, message: "if without endif")
        }
        self.kind = kind
        self.source = source
        self.rules = rules
    }

    func find(_ key: String) -> AccessTableResult {
        let subject = Array(key.utf8)
        var i = 0
        while i < rules.count {
            switch rules[i] {
            case .match(let regex, let negated, .fixed(let action), let line):
                switch regex.match(subject) {
                case .match: if !negated { return .found(action) }
                case .noMatch: if negated { return .found(action) }
                case .failed(let why): return failure(line, why)
                }
            case .match(let regex, _, .substituted(let template), let line):
                switch regex.groups(subject) {
                case .match(let ranges): return substitute(template, ranges, subject, line)
                case .noMatch: break
                case .failed(let why): return failure(line, why)
                }
            case .block(let regex, let negated, let end, let line):
                switch regex.match(subject) {
                case .match: if negated { i = end }
                case .noMatch: if !negated { i = end }
                case .failed(let why): return failure(line, why)
                }
            case .endif:
                break
            }
            i += 1
        }
        return .notFound
    }

    private func failure(_ line: Int, _ why: String) -> AccessTableResult {
        .failed("\(source) line \(line): \(why)")
    }

    private func substitute(_ template: ReplacementTemplate, _ ranges: [Range<Int>?], _ subject: [UInt8], _ line: Int) -> AccessTableResult {
        let text = template.expand { n in
            ranges[n - 1].map { ReplacementTemplate.printable(subject[$0]) } ?? ""
        }
        guard text.utf8.count <= AccessMaps.maxLineBytes else {
            return failure(line, "the result with $n substituted is \(text.utf8.count) bytes; at most \(AccessMaps.maxLineBytes)")
        }
        do {
            return .found(try AccessAction(parsing: String(MapSource.trimmed(Substring(text)))))
        } catch {
            return failure(line, "the result with $n substituted: \(error.message)")
        }
    }

    /// The text after `word` when the line starts with it (any case) and it is not the start of a
    /// longer word.
    private static func keyword(_ word: String, _ text: Substring) -> Substring? {
        let u = text.utf8
        guard u.count >= word.utf8.count else { return nil }
        let end = u.index(u.startIndex, offsetBy: word.utf8.count)
        guard text[..<end].lowercased() == word else { return nil }
        if end < u.endIndex, isAlphanumeric(u[end]) { return nil }
        return text[end...]
    }

    private static func pattern(_ text: Substring, kind: AccessTableKind) throws(AccessValueError) -> (PCRERegex, Bool, Substring) {
        let u = text.utf8
        var i = u.startIndex
        var negated = false
        while i < u.endIndex, u[i] == UInt8(ascii: "!") || MapSource.isSpace(u[i]) {
            if u[i] == UInt8(ascii: "!") { negated.toggle() }
            i = u.index(after: i)
        }
        guard i < u.endIndex else { throw AccessValueError("no pattern") }
        let delimiter = u[i]
        guard delimiter < 0x80, !isAlphanumeric(delimiter), delimiter != UInt8(ascii: "\\") else {
            throw AccessValueError("a pattern starts with its delimiter, such as /, which may not be a letter, digit, backslash or non-ASCII character: \(AccessMapError.quote(text[i...]))")
        }
        let start = u.index(after: i)
        var j = start
        while j < u.endIndex, u[j] != delimiter {
            if u[j] == UInt8(ascii: "\\"), u.index(after: j) < u.endIndex { j = u.index(after: j) }
            j = u.index(after: j)
        }
        guard j < u.endIndex else {
            throw AccessValueError("no closing delimiter \(AccessMapError.quote(String(decoding: [delimiter], as: UTF8.self))) for the pattern")
        }
        let body = String(text[start..<j])
        var k = u.index(after: j)
        var flags: PCRERegex.Flags = kind == .pcre ? [.caseless, .dotAll] : [.caseless, .dotAll, .dollarEndOnly]
        while k < u.endIndex, !MapSource.isSpace(u[k]), u[k] != UInt8(ascii: "!") {
            flags.formSymmetricDifference(try Self.flag(u[k], kind: kind))
            k = u.index(after: k)
        }
        if k < u.endIndex, u[k] == UInt8(ascii: "!") {
            throw AccessValueError("/pattern1/!/pattern2/ is not supported: write if !/pattern2/, the rule, endif")
        }
        do {
            return (try PCRERegex(body, flags: flags), negated, text[k...])
        } catch {
            throw AccessValueError("bad regular expression: \(LogEscape.escape(error.description))")
        }
    }

    private static func flag(_ c: UInt8, kind: AccessTableKind) throws(AccessValueError) -> PCRERegex.Flags {
        switch (kind, c) {
        case (_, UInt8(ascii: "i")): return .caseless
        case (.pcre, UInt8(ascii: "m")): return .multiline
        case (.regexp, UInt8(ascii: "m")): return [.multiline, .dotAll]
        case (.pcre, UInt8(ascii: "s")): return .dotAll
        case (.pcre, UInt8(ascii: "x")): return .extended
        case (.pcre, UInt8(ascii: "A")): return .anchored
        case (.pcre, UInt8(ascii: "E")): return .dollarEndOnly
        case (.pcre, UInt8(ascii: "U")): return .ungreedy
        case (.pcre, UInt8(ascii: "X")):
            throw AccessValueError("flag X (PCRE's EXTRA) does not exist in PCRE2")
        case (.regexp, UInt8(ascii: "x")):
            throw AccessValueError("flag x would switch to POSIX basic regular expressions, which are not supported; write the pattern as an extended one")
        default:
            throw AccessValueError("unknown flag \(AccessMapError.quote(String(decoding: [c], as: UTF8.self))) after the pattern")
        }
    }

    private static func result(_ text: Substring, regex: PCRERegex, negated: Bool) throws(AccessValueError) -> PatternResult {
        guard !text.isEmpty else { throw AccessValueError("expected format: /pattern/ whitespace result; there is no result") }
        guard text.utf8.contains(UInt8(ascii: "$")) else { return .fixed(try AccessAction(parsing: String(text))) }
        let template = try ReplacementTemplate(parsing: String(text))
        let highest = template.highestGroup
        if highest == 0 { return .fixed(try AccessAction(parsing: template.expand { _ in "" })) }
        if negated { throw AccessValueError("$\(highest) in the result of a negated pattern: it matched nothing to substitute") }
        guard highest <= regex.captureCount else {
            throw AccessValueError("$\(highest) in the result, but the pattern has \(regex.captureCount) group(s)")
        }
        // Checked with stand-in text, so a result that cannot be an action fails now, not per client.
        _ = try AccessAction(parsing: template.expand { _ in "x" })
        return .substituted(template)
    }

    private static func isAlphanumeric(_ b: UInt8) -> Bool {
        (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a)
    }

    private static func closed(_ rule: PatternRule, end: Int) -> PatternRule {
        guard case .block(let regex, let negated, _, let line) = rule else { return rule }
        return .block(regex, negated: negated, end: end, line: line)
    }
}
