extension AccessAction {
    /// Reply text longer than this would not fit an SMTP reply line (RFC 5321: 512 bytes with the
    /// code, the enhanced code and CRLF).
    static let maxReplyTextBytes = 480
    /// RFC 5322's limit for a header line, without CRLF.
    static let maxHeaderBytes = 998

    /// Actions Postfix has that only make sense to a server that queues the message.
    static let queueActions: Set<String> = ["FILTER", "HOLD", "REDIRECT", "DISCARD", "BCC", "DELAY"]
    /// How smtpd restriction names begin; any of them as a map value asks for a restriction list.
    static let restrictionPrefixes = ["permit", "reject_", "check_", "defer_", "warn_if_", "sleep"]

    /// An access(5) value, as postmap left it (surrounding whitespace removed). Action words are
    /// case-insensitive, as in Postfix. Refused, where Postfix would accept the line: a bare "4NN" or
    /// "5NN" (all-numeric, so Postfix takes it as OK, almost never what was meant), an enhanced code
    /// whose class differs from the reply code's, control characters, reply text that does not fit a
    /// reply line, and what SMTPGate cannot do (queue actions, restriction lists and classes).
    init(parsing value: String, redirects: Bool = false) throws(AccessValueError) {
        if let bad = value.utf8.first(where: { ($0 < 0x20 && $0 != 0x09) || $0 == 0x7f }) {
            throw AccessValueError("control character 0x\(String(bad, radix: 16)) in the value \(AccessMapError.quote(value))")
        }
        let word = value.prefix { $0 != " " && $0 != "\t" }
        let rest = String(value[word.endIndex...].drop { $0 == " " || $0 == "\t" })
        let upper = word.uppercased()
        switch upper {
        case "OK", "RELAY":
            self = .ok
        case "DUNNO":
            self = .dunno
        case "REJECT":
            self = .reject(try Self.reply(code: AccessReply.rejectCode, rest))
        case "DEFER":
            self = .deferred(try Self.reply(code: AccessReply.deferCode, rest))
        case "DEFER_IF_PERMIT":
            self = .deferIfPermit(try Self.reply(code: AccessReply.deferCode, rest))
        case "DEFER_IF_REJECT":
            self = .deferIfReject(try Self.reply(code: AccessReply.deferCode, rest))
        case "WARN":
            self = .warn(rest)
        case "INFO":
            self = .info(rest)
        case "PREPEND":
            self = .prepend(try Self.header(rest))
        case "REDIRECT" where redirects:
            self = try Self.redirect(rest)
        case "HANGUP":
            throw AccessValueError("HANGUP is an unsupported Postfix test feature; use 421 text or 521 text to reply and close")
        default:
            if upper == "REDIRECT" {
                throw AccessValueError("REDIRECT is an action of check_destination_access maps only (it sends a session to another MTA); here use OK, REJECT, DEFER, ...")
            }
            if Self.queueActions.contains(upper) {
                throw AccessValueError("\(upper) has no meaning in SMTPGate (it relays; it does not queue)")
            }
            self = try Self.numeric(value, word: word, rest: rest)
        }
    }

    /// `ADDRESS`, `ADDRESS:PORT`, `[ADDRESS]:PORT` (IPv6 in brackets); port 25 when none is given.
    static func redirect(_ text: String) throws(AccessValueError) -> AccessAction {
        var host = Substring(text)
        var port = 25
        if host.hasPrefix("["), let close = host.firstIndex(of: "]") {
            let after = host[host.index(after: close)...]
            host = host[host.index(after: host.startIndex)..<close]
            if !after.isEmpty {
                guard after.hasPrefix(":"), let p = Int(after.dropFirst()), (1...65535).contains(p) else {
                    throw AccessValueError("REDIRECT \(AccessMapError.quote(text)): expected [ADDRESS]:PORT")
                }
                port = p
            }
        } else if host.filter({ $0 == ":" }).count == 1, let colon = host.firstIndex(of: ":") {
            guard let p = Int(host[host.index(after: colon)...]), (1...65535).contains(p) else {
                throw AccessValueError("REDIRECT \(AccessMapError.quote(text)): the port must be 1 to 65535")
            }
            port = p
            host = host[..<colon]
        }
        guard AddressBytes.parse(String(host)) != nil else {
            throw AccessValueError("REDIRECT \(AccessMapError.quote(text)): an IP address is needed (the proxy does not look names up here)")
        }
        return .redirect(host: String(host), port: port)
    }

    private static func numeric(_ value: String, word: Substring, rest: String) throws(AccessValueError) -> AccessAction {
        let digits = word.utf8.allSatisfy { $0 >= 0x30 && $0 <= 0x39 }
        guard digits else {
            let lower = word.lowercased()
            if restrictionPrefixes.contains(where: { lower.hasPrefix($0) }) {
                throw AccessValueError("\(AccessMapError.quote(word)): restriction lists as map values are not supported; use OK, REJECT, DEFER, 4NN/5NN text, ...")
            }
            throw AccessValueError("unknown action \(AccessMapError.quote(word)) (restriction classes are not supported); use OK, DUNNO, REJECT, DEFER, DEFER_IF_PERMIT, DEFER_IF_REJECT, WARN, INFO, PREPEND, 4NN text or 5NN text")
        }
        let first = word.utf8.first!
        let isCode = word.utf8.count == 3 && (first == UInt8(ascii: "4") || first == UInt8(ascii: "5"))
        if rest.isEmpty {
            if isCode {
                throw AccessValueError("a bare \(word) is all-numeric, which Postfix takes as OK; write \(word) text to reply, or OK")
            }
            return .ok
        }
        guard isCode, let code = Int(word) else {
            throw AccessValueError("reply code \(AccessMapError.quote(word)): an access map's code is 4NN or 5NN followed by text")
        }
        let reply = try Self.reply(code: code, rest)
        if code == 421 || code == 521 { return .disconnect(reply) }
        return first == UInt8(ascii: "5") ? .reject(reply) : .deferred(reply)
    }

    /// The text after a code or action, with an RFC 3463 code at its start taken out (it must be of
    /// the reply code's class: Postfix would send "550 4.7.1", which clients read inconsistently).
    private static func reply(code: Int, _ rest: String) throws(AccessValueError) -> AccessReply {
        let codeClass = code / 100
        var text = Substring(rest)
        var enhanced = "\(codeClass).7.1"
        let token = rest.prefix { $0 != " " && $0 != "\t" }
        if let status = Self.enhancedStatus(token) {
            guard status == codeClass else {
                throw AccessValueError("enhanced status code \(token) does not go with reply code \(code): its class must be \(codeClass)")
            }
            enhanced = String(token)
            text = rest[token.endIndex...].drop { $0 == " " || $0 == "\t" }
        }
        guard text.utf8.count <= maxReplyTextBytes else {
            throw AccessValueError("the reply text is \(text.utf8.count) bytes; at most \(maxReplyTextBytes) fit a reply line")
        }
        return AccessReply(code: code, enhanced: enhanced, text: text.isEmpty ? nil : String(text))
    }

    /// "C.S.D": class 2, 4 or 5, then subject and detail of one to three digits each.
    private static func enhancedStatus(_ token: Substring) -> Int? {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3,
              parts[0].count == 1, let cls = Int(parts[0]), [2, 4, 5].contains(cls),
              parts[1...].allSatisfy({ (1...3).contains($0.utf8.count) && $0.utf8.allSatisfy { $0 >= 0x30 && $0 <= 0x39 } })
        else { return nil }
        return cls
    }

    /// "Name: value": a name of printable ASCII other than ':' right before the colon, the whole line at
    /// most 998 bytes (control characters were refused above, so no CR, LF or NUL can be in it).
    private static func header(_ text: String) throws(AccessValueError) -> String {
        guard let colon = text.utf8.firstIndex(of: UInt8(ascii: ":")) else {
            throw AccessValueError("PREPEND needs a header, \"Name: value\"; got \(AccessMapError.quote(text))")
        }
        let name = text.utf8[..<colon]
        guard !name.isEmpty, name.allSatisfy({ $0 > 0x20 && $0 < 0x7f }) else {
            throw AccessValueError("PREPEND header name \(AccessMapError.quote(String(text[..<colon]))) must be printable ASCII without spaces")
        }
        guard text.utf8.count <= maxHeaderBytes else {
            throw AccessValueError("the PREPEND header is \(text.utf8.count) bytes; at most \(maxHeaderBytes)")
        }
        return text
    }
}
