/// Translates a rinetd 0.73 configuration (the version Debian 12 ships) into SMTPGate configuration
/// text: global options and the global `allow`/`deny` rules first, then one `[forward rinetd-LINE]`
/// section per forwarding rule, LINE being the rule's line in the rinetd file.
///
/// rinetd 0.73's grammar (`parse.peg`), which this follows:
/// - `BINDADDRESS BINDPORT CONNECTADDRESS CONNECTPORT [timeout=N,src=ADDRESS]` forwards; a port may
///   end in `/tcp` or `/udp`, an address may be `0`, IPv4, IPv6 with or without brackets, or a name;
/// - `allow PATTERN` / `deny PATTERN`: before the first forwarding rule they are global, after one
///   they belong to the latest forwarding rule;
/// - `logfile PATH`, `pidlogfile PATH` (PATH may be in double quotes), `logcommon`;
/// - `#` starts a comment, also after a command. There is no `include` in 0.73.
///
/// Refused, with the line and what to do instead: host and service names, UDP, unknown options,
/// lines rinetd would not parse. `[timeout=N]` becomes `timeout_idle N` (rinetd 0.73 applied it to
/// UDP forwards only, which the output says). rinetd 0.73 skipped the first allow/deny rule of the
/// first forward that has rules when there are no global rules (fixed after 0.73); SMTPGate applies
/// every rule, and the output says so where it matters.
public enum RinetdImport {
    public static let maxFileBytes = 1 << 20
    static let maxLineBytes = 8192
    static let maxRules = 10_000
    static let maxTimeout = 604_800

    static let expected = "expected 'BINDADDRESS BINDPORT CONNECTADDRESS CONNECTPORT [OPTIONS]', 'allow PATTERN', 'deny PATTERN', 'logfile PATH', 'pidlogfile PATH' or 'logcommon'"

    struct Forward {
        var line: Int
        var leading: [String]
        var body: [String]
        var rules = ForwardRules()
        var skippedByRinetd = false
        var name: String { "rinetd-\(line)" }
    }

    public static func translate(_ text: String, file: String) throws(ConfigError) -> String {
        func fail(_ line: Int?, _ message: String) -> ConfigError { ConfigError(file: file, line: line, message: message) }
        guard text.utf8.count <= maxFileBytes else {
            throw fail(nil, "file is larger than \(maxFileBytes) bytes: a rinetd.conf is a few kilobytes, is this the right file?")
        }

        var global: [String] = []
        var globalRules = ForwardRules()
        var forwards: [Forward] = []
        var pending: [String] = []
        var ruleCount = 0
        var seen: [String: Int] = [:]
        var anyRuleYet = false

        func flush() {
            if forwards.isEmpty { global += pending } else { forwards[forwards.count - 1].body += pending }
            pending = []
        }

        var lineNo = 0
        for raw in text.utf8.split(separator: 0x0a, omittingEmptySubsequences: false) {
            lineNo += 1
            var bytes = raw[...]
            if bytes.last == 0x0d { bytes = bytes.dropLast() }
            guard bytes.count <= maxLineBytes else { throw fail(lineNo, "line is longer than \(maxLineBytes) bytes") }
            guard !bytes.contains(0) else { throw fail(lineNo, "line contains a NUL byte") }
            let line = String(decoding: bytes, as: UTF8.self)
            let body = line.drop(while: isBlank)
            if body.isEmpty {
                flush()
                continue
            }
            if body.hasPrefix("#") {
                pending.append(String(body))
                continue
            }
            let words = body.split(whereSeparator: isBlank)
            let keyword = String(words[0])

            switch keyword {
            case "allow", "deny":
                let (args, comment) = splitComment(body, filenames: false)
                if let comment { pending.append(comment) }
                guard args.count == 2 else { throw fail(lineNo, "\(keyword) needs exactly one pattern") }
                let pattern: AddressPattern
                do {
                    pattern = try AddressPattern(parsing: String(args[1]))
                } catch {
                    throw fail(lineNo, "\(keyword): \(error.message)")
                }
                ruleCount += 1
                guard ruleCount <= maxRules else { throw fail(lineNo, "more than \(maxRules) rules: SMTPGate imports at most \(maxRules)") }
                let out = "\(keyword) \(pattern)"
                if forwards.isEmpty {
                    if keyword == "allow" { globalRules.allow.append(pattern) } else { globalRules.deny.append(pattern) }
                    global += pending + [out]
                } else {
                    let i = forwards.count - 1
                    if !anyRuleYet, forwards[i].rules.allow.isEmpty, forwards[i].rules.deny.isEmpty {
                        // rinetd 0.73's rulesStart bug hits this forward if it gets a second rule.
                        forwards[i].skippedByRinetd = true
                    }
                    if keyword == "allow" { forwards[i].rules.allow.append(pattern) } else { forwards[i].rules.deny.append(pattern) }
                    forwards[i].body += pending + [out]
                }
                pending = []
                anyRuleYet = true

            case "logfile", "pidlogfile":
                let (args, comment) = splitComment(body, filenames: true)
                if let comment { pending.append(comment) }
                guard args.count >= 2 else { throw fail(lineNo, "\(keyword) needs a file name") }
                var path = body.dropFirst(keyword.count).drop(while: isBlank)
                if let c = comment { path = path.dropLast(c.count) }
                while let last = path.last, isBlank(last) { path = path.dropLast() }
                if path.hasPrefix("\"") {
                    guard path.count >= 3, path.hasSuffix("\""), !path.dropFirst().dropLast().contains("\"") else {
                        throw fail(lineNo, "\(keyword): a quoted file name is written \"PATH\", got '\(LogEscape.escape(String(path)))'")
                    }
                    path = path.dropFirst().dropLast()
                } else if args.count != 2 {
                    throw fail(lineNo, "\(keyword): a file name with spaces must be in double quotes")
                }
                if let earlier = seen[keyword] {
                    throw fail(lineNo, "\(keyword) is already given on line \(earlier): keep one")
                }
                seen[keyword] = lineNo
                let p = String(path)
                if keyword == "pidlogfile" {
                    global += pending + ["pidfile \(p)"]
                } else {
                    global += pending + ["# rinetd's logfile \(p): to log there, run smtpgate run --log-file \(shellQuoted(p))"]
                }
                pending = []

            case "logcommon":
                let (args, comment) = splitComment(body, filenames: false)
                if let comment { pending.append(comment) }
                guard args.count == 1 else { throw fail(lineNo, "logcommon takes no value") }
                if seen[keyword] == nil {
                    global += pending + ["# rinetd's logcommon (web server log format) has no equivalent: SMTPGate writes one logfmt line per connection with client, listener, destination, bytes each way, duration and result"]
                } else {
                    global += pending
                }
                seen[keyword] = lineNo
                pending = []

            default:
                let (args, comment) = splitComment(body, filenames: false)
                if let comment { pending.append(comment) }
                let forward = try forwardingRule(args, line: lineNo, fail: fail)
                ruleCount += 1
                guard ruleCount <= maxRules else { throw fail(lineNo, "more than \(maxRules) rules: SMTPGate imports at most \(maxRules)") }
                forwards.append(Forward(line: lineNo, leading: pending, body: forward))
                pending = []
            }
        }
        flush()

        var out: [String] = [
            "# SMTPGate configuration translated from the rinetd configuration \(LogEscape.escape(file)).",
            "# Each [forward rinetd-N] section is the forwarding rule on line N of that file.",
        ]
        if !global.isEmpty {
            out.append("")
            out += global
        }
        for var f in forwards {
            f.rules.globalAllow = globalRules.allow
            f.rules.globalDeny = globalRules.deny
            out.append("")
            out += f.leading
            out.append("[forward \(f.name)]")
            out += f.body
            if f.skippedByRinetd, f.rules.allow.count + f.rules.deny.count >= 2 {
                out.append("# note: rinetd 0.73 skipped the first allow/deny rule of this forward (a bug fixed after 0.73); SMTPGate applies every rule")
            }
            for w in f.rules.warnings(forward: f.name) { out.append("# warning: \(w)") }
        }
        return out.joined(separator: "\n") + "\n"
    }

    /// The lines of one `[forward]` section, after its header.
    static func forwardingRule(_ args: [Substring], line: Int, fail: (Int?, String) -> ConfigError) throws(ConfigError) -> [String] {
        // The options may follow the connect port without a space, and hold spaces themselves.
        var fields = args
        var optionText: Substring? = nil
        if fields.count >= 4, let bracket = fields[3].firstIndex(of: "[") {
            let rest = fields[3][bracket...]
            fields[3] = fields[3][..<bracket]
            optionText = Substring(([rest] + fields[4...]).joined(separator: " "))
            fields = Array(fields[..<4])
        } else if fields.count > 4, fields[4].hasPrefix("[") {
            optionText = Substring(fields[4...].joined(separator: " "))
            fields = Array(fields[..<4])
        }
        guard fields.count == 4, !fields[3].isEmpty else {
            throw fail(line, "not a rinetd line: \(expected)")
        }
        let bind = try address(String(fields[0]), role: "bind address", line: line, fail: fail)
        let bindPort = try port(String(fields[1]), role: "bind port", line: line, fail: fail)
        let connect = try address(String(fields[2]), role: "connect address", line: line, fail: fail)
        let connectPort = try port(String(fields[3]), role: "connect port", line: line, fail: fail)
        var lines = [
            "bind_address \(bind.text)",
            "port \(bindPort)",
            "mode fixed",
            "fixed_server \(connect.text)",
            "fixed_server_port \(connectPort)",
        ]
        if let optionText {
            let shown = "'\(LogEscape.escape(String(optionText)))'"
            guard optionText.hasPrefix("["), optionText.hasSuffix("]"), optionText.count > 2 else {
                throw fail(line, "options are written [timeout=SECONDS,src=ADDRESS] after the connect port, got \(shown)")
            }
            var timeout: Int? = nil
            var source: IPAddress? = nil
            for item in optionText.dropFirst().dropLast().split(separator: ",", omittingEmptySubsequences: false) {
                let parts = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                let key = parts[0].trimmingBlanks()
                guard parts.count == 2, !key.isEmpty else {
                    throw fail(line, "options are written [timeout=SECONDS,src=ADDRESS] after the connect port, got \(shown)")
                }
                let value = String(parts[1].trimmingBlanks())
                switch key {
                case "timeout":
                    guard timeout == nil else { throw fail(line, "option timeout is given twice in \(shown): keep one") }
                    guard !value.isEmpty, value.utf8.count <= 7, value.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
                          let n = Int(value), n <= maxTimeout else {
                        throw fail(line, "timeout=\(LogEscape.escape(value)): expected whole seconds from 0 to \(maxTimeout)")
                    }
                    timeout = n
                case "src":
                    guard source == nil else { throw fail(line, "option src is given twice in \(shown): keep one") }
                    source = try address(value, role: "src address", line: line, fail: fail)
                default:
                    throw fail(line, "unknown option '\(LogEscape.escape(String(key)))' in \(shown): rinetd 0.73 knows only timeout=SECONDS and src=ADDRESS")
                }
            }
            if let timeout {
                if timeout == 0 {
                    lines.append("# [timeout=0] meant rinetd's default UDP timeout: not carried over")
                } else {
                    lines.append("# rinetd 0.73 applied [timeout=\(timeout)] to UDP forwards only; here it closes this TCP forward after \(timeout) idle seconds")
                    lines.append("timeout_idle \(timeout)")
                }
            }
            if let source {
                guard source.family == connect.family else {
                    throw fail(line, "src address \(source.text) and connect address \(connect.text) are of different address families: drop src= or write an address of the connect address's family")
                }
                lines.append("outgoing_addr \(source.text)")
            }
        }
        return lines
    }

    /// A literal address as rinetd takes it (`0` is 0.0.0.0, IPv6 may be in brackets), canonical.
    static func address(_ text: String, role: String, line: Int, fail: (Int?, String) -> ConfigError) throws(ConfigError) -> IPAddress {
        if text == "0" { return IPAddress.anyV4 }
        if text.utf8.count <= 64, AddressBytes.parse(text) != nil, let a = IPAddress(text) { return a }
        let shown = "'\(LogEscape.escape(String(text.prefix(80))))'"
        let numeric = text.contains(":") || (!text.isEmpty && text.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || $0 == UInt8(ascii: ".") })
        if numeric || text.isEmpty {
            throw fail(line, "\(role) \(shown) is not a valid IPv4 or IPv6 address")
        }
        throw fail(line, "\(role) \(shown) is a host name; resolve it and write the address: SMTPGate does not resolve names in forwards")
    }

    /// A TCP port number (`80` or `80/tcp`).
    static func port(_ text: String, role: String, line: Int, fail: (Int?, String) -> ConfigError) throws(ConfigError) -> Int {
        let shown = "'\(LogEscape.escape(String(text.prefix(80))))'"
        var number = Substring(text)
        if let slash = text.firstIndex(of: "/") {
            let proto = text[text.index(after: slash)...]
            number = text[..<slash]
            if proto == "udp" {
                throw fail(line, "\(role) \(shown) is UDP: SMTPGate forwards TCP only; keep rinetd for UDP forwards or drop the rule")
            }
            guard proto == "tcp" else {
                throw fail(line, "\(role) \(shown): a port ends in /tcp, /udp or nothing")
            }
        }
        if let first = number.utf8.first, AddressPattern.isLetter(first) || first == UInt8(ascii: "_") {
            throw fail(line, "\(role) \(shown) is a service name; write the port number (see /etc/services): SMTPGate does not look up service names")
        }
        guard !number.isEmpty, number.utf8.count <= 5, number.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
              let n = Int(number), (1...65535).contains(n) else {
            throw fail(line, "\(role) \(shown) is not a port number from 1 to 65535")
        }
        return n
    }

    /// The words before a `#` comment, and the comment. In file names (`logfile`, `pidlogfile`) a
    /// `#` starts a comment only at the start of a word, as rinetd reads `[^ \t\r\n]+` there.
    static func splitComment(_ body: Substring, filenames: Bool) -> ([Substring], String?) {
        var cut: Substring.Index? = nil
        if filenames {
            var previousBlank = true
            for i in body.indices {
                if body[i] == "#", previousBlank { cut = i; break }
                previousBlank = isBlank(body[i])
            }
        } else {
            cut = body.firstIndex(of: "#")
        }
        guard let cut else { return (body.split(whereSeparator: isBlank), nil) }
        return (body[..<cut].split(whereSeparator: isBlank), String(body[cut...]))
    }

    static func isBlank(_ c: Character) -> Bool { c == " " || c == "\t" }

    static func shellQuoted(_ s: String) -> String {
        let safe = s.utf8.allSatisfy { b in
            (b >= 0x30 && b <= 0x39) || ((b | 0x20) >= 0x61 && (b | 0x20) <= 0x7a) || "/._-+,=:@%".utf8.contains(b)
        }
        if safe, !s.isEmpty { return s }
        return "'" + s.split(separator: "'", omittingEmptySubsequences: false).joined(separator: "'\\''") + "'"
    }
}

extension Substring {
    fileprivate func trimmingBlanks() -> Substring {
        var s = self.drop(while: RinetdImport.isBlank)
        while let last = s.last, RinetdImport.isBlank(last) { s = s.dropLast() }
        return s
    }
}
