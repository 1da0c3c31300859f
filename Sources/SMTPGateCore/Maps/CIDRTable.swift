/// A cidr_table(5) file: `network/prefix action` and bare addresses, IPv4 and IPv6, tried in file
/// order, the first match winning; `!pattern action`, and `if pattern` / `if !pattern` ... `endif`
/// blocks nested at most `AccessMaps.maxNesting` deep. Patterns are parsed by `CIDR`: a network
/// with bits set after its prefix length is an error here (Postfix warns and uses it masked, but
/// `10.0.0.1/8` is almost always a typo). An IPv4-mapped client address (`::ffff:10.1.2.3`) matches
/// IPv4 patterns, since SMTPGate sees dual-stack clients that way and Postfix would have seen IPv4.
struct CIDRTable: AccessTable {
    let source: String
    private let rules: [CIDRRule]

    var kind: AccessTableKind { .cidr }

    init(bytes: [UInt8], file: String, source: String, redirects: Bool = false) throws(AccessMapError) {
        var rules = [CIDRRule]()
        var open = [(index: Int, line: Int)]()
        for line in try MapSource.lines(bytes, file: file) {
            func fail(_ message: String) -> AccessMapError {
                AccessMapError(file: file, line: line.number, message: message)
            }
            let text = Substring(line.text)
            let word = text[..<(text.utf8.firstIndex(where: MapSource.isSpace) ?? text.endIndex)]
            let rest = MapSource.trimmed(text[word.endIndex...])
            switch word.lowercased() {
            case "endif":
                guard rest.isEmpty else { throw fail("unexpected text after endif: \(AccessMapError.quote(rest))") }
                guard let top = open.popLast() else { throw fail("endif without if") }
                rules[top.index] = Self.closed(rules[top.index], end: rules.count)
                rules.append(.endif)
            case "if":
                guard !rest.isEmpty, !rest.utf8.contains(where: MapSource.isSpace) else {
                    throw fail("expected: if pattern, or if !pattern")
                }
                guard open.count < AccessMaps.maxNesting else {
                    throw fail("if blocks nested more than \(AccessMaps.maxNesting) deep")
                }
                let (net, negated) = try Self.pattern(rest, fail)
                open.append((rules.count, line.number))
                rules.append(.block(net, negated: negated, end: -1))
            default:
                let (net, negated) = try Self.pattern(word, fail)
                guard !rest.isEmpty else { throw fail("expected format: pattern whitespace action; \(AccessMapError.quote(word)) has no action") }
                do {
                    rules.append(.match(net, negated: negated, try AccessAction(parsing: String(rest), redirects: redirects)))
                } catch {
                    throw fail(error.message)
                }
            }
        }
        if let unclosed = open.last {
            throw AccessMapError(file: file, line: unclosed.line, message: "if without endif")
        }
        self.source = source
        self.rules = rules
    }

    func find(_ key: String) -> AccessTableResult {
        guard let parsed = AddressBytes.parse(Self.unbracketed(Substring(key))) else { return .notFound }
        let address = AddressBytes.unmapped(parsed)
        var i = 0
        while i < rules.count {
            switch rules[i] {
            case .match(let net, let negated, let action):
                if CIDRRule.applies(net, negated: negated, to: address) { return .found(action) }
            case .block(let net, let negated, let end):
                if !CIDRRule.applies(net, negated: negated, to: address) { i = end }
            case .endif:
                break
            }
            i += 1
        }
        return .notFound
    }

    private static func pattern(_ text: Substring, _ fail: (String) -> AccessMapError) throws(AccessMapError) -> (CIDR, Bool) {
        let negated = text.hasPrefix("!")
        let body = negated ? text.dropFirst() : text
        do {
            return (try CIDR(parsing: unbracketed(body)), negated)
        } catch {
            throw fail(error.description)
        }
    }

    /// cidr_table(5) allows the address in brackets, IPv4 too: `[10.0.0.0]/8`, `[2001:db8::1]`.
    private static func unbracketed(_ text: Substring) -> String {
        let slash = text.firstIndex(of: "/") ?? text.endIndex
        let address = text[..<slash]
        guard address.hasPrefix("["), address.hasSuffix("]"), address.count >= 2 else { return String(text) }
        return String(address.dropFirst().dropLast() + text[slash...])
    }

    private static func closed(_ rule: CIDRRule, end: Int) -> CIDRRule {
        guard case .block(let net, let negated, _) = rule else { return rule }
        return .block(net, negated: negated, end: end)
    }
}
