/// Reads smtp-gated syntax: `option value` per line, `#` or `;` starts a comment line.
public enum ConfigParser {
    /// Bounds on hostile or mistaken input (a binary file given as a config, say).
    static let maxFileBytes = 1 << 20
    static let maxLineBytes = 8192

    /// A file as read from disk: text that is not UTF-8 is refused naming the first line that is not.
    public static func parse(bytes: [UInt8], file: String) throws(ConfigError) -> Config {
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw ConfigError(file: file, line: firstInvalidLine(bytes), message: "line is not valid UTF-8 text")
        }
        return try parse(text, file: file)
    }

    static func firstInvalidLine(_ bytes: [UInt8]) -> Int? {
        var lineNo = 0
        for line in bytes.split(separator: 0x0a, omittingEmptySubsequences: false) {
            lineNo += 1
            if String(validating: line, as: UTF8.self) == nil { return lineNo }
        }
        return nil
    }

    public static func parse(_ text: String, file: String) throws(ConfigError) -> Config {
        guard text.utf8.count <= maxFileBytes else {
            throw ConfigError(file: file, line: nil, message: "file is larger than \(maxFileBytes) bytes")
        }
        var config = Config()
        var seen: [String: Int] = [:]
        var rateValues: [RateKind: String] = [:]
        var lineNo = 0
        // "\r\n" is a single Character in Swift, so both line ends are named.
        for rawLine in text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" }) {
            lineNo += 1
            guard rawLine.utf8.count <= maxLineBytes else {
                throw ConfigError(file: file, line: lineNo, message: "line is longer than \(maxLineBytes) bytes")
            }
            let line = rawLine.trimmingSpaces()
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
            if line.utf8.contains(0) {
                throw ConfigError(file: file, line: lineNo, message: "line contains a NUL byte")
            }
            let name: String
            let value: String
            if let sep = line.firstIndex(where: { $0 == " " || $0 == "\t" }) {
                name = String(line[..<sep])
                value = String(line[sep...]).trimmingSpaces()
            } else {
                name = line
                value = ""
            }
            guard let option = Option.byName[name] else {
                throw ConfigError(file: file, line: lineNo, message: "unknown option '\(LogEscape.escape(name))'")
            }
            guard !value.isEmpty else {
                throw ConfigError(file: file, line: lineNo, message: "option '\(name)' needs a value")
            }
            if let earlier = seen[name] {
                throw ConfigError(file: file, line: lineNo, message: "option '\(name)' is already set on line \(earlier)")
            }
            seen[name] = lineNo
            if let kind = RateKind.allCases.first(where: { $0.optionName == name }) { rateValues[kind] = value }
            do {
                try option.apply(&config, value)
            } catch {
                throw ConfigError(file: file, line: lineNo, message: "option '\(name)': \(error.message)")
            }
        }
        for (kind, value) in rateValues {
            // Parsed once already with a stand-in window: only the default window can differ now.
            do {
                let spec = try RateLimitSpec.parse(value, defaultSeconds: config.ratelimitExpiration)
                config.rateLimits[kind] = spec.isOff ? nil : spec
            } catch {
                throw ConfigError(file: file, line: seen[kind.optionName], message: "option '\(kind.optionName)': \(error.message)")
            }
        }
        try validate(config, file: file, lines: seen)
        return config
    }

    static func validate(_ c: Config, file: String, lines: [String: Int]) throws(ConfigError) {
        guard let mode = c.mode else {
            throw ConfigError(file: file, line: nil, message: "option 'mode' is not set (one of: \(Config.Mode.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        func fail(_ option: String, _ message: String) -> ConfigError {
            ConfigError(file: file, line: lines[option] ?? lines["mode"], message: message)
        }
        if mode.isFixed, c.fixedServer == nil {
            throw fail("mode", "mode \(mode.rawValue) needs fixed_server")
        }
        if let out = c.outgoingAddr, let server = c.fixedServer, mode.isFixed, out.family != server.family {
            throw fail("outgoing_addr", "outgoing_addr \(out) and fixed_server \(server) are of different address families")
        }
        if c.proxyProtocol, mode != .fixed {
            throw fail("proxy_protocol", "proxy_protocol needs mode fixed (the header goes to fixed_server)")
        }
        if c.spf == .fixed, c.spfFixedIP == nil {
            throw fail("spf", "spf fixed needs spf_fixed_ip (the address the sender's record is checked against)")
        }
        if c.transparentSource, mode != .tproxy {
            throw fail("transparent_source", "transparent_source needs mode tproxy")
        }
        if c.transparentSource, c.setUser != nil {
            throw fail("transparent_source", "transparent_source needs CAP_NET_ADMIN on every connection, which set_user gives up; run without set_user under a unit granting CAP_NET_ADMIN")
        }
        if c.transparentSource, c.outgoingAddr != nil {
            throw fail("transparent_source", "transparent_source and outgoing_addr exclude each other")
        }
    }

    /// What is valid but probably not meant: `check-config` prints these, the daemon logs them at start.
    public static func warnings(_ c: Config) -> [String] {
        var out: [String] = []
        let locking = c.lockDuration != 0 && !c.lockOn.isEmpty
        if c.mode?.isFixed == true, locking || !c.rateLimits.isEmpty, c.natSources.isEmpty {
            out.append("mode \(c.mode!.rawValue) with lock_on or ratelimit_* and no nat_sources: the address each connection comes from is taken as the client; if a router SNATs your customers, list it in nat_sources or every customer behind it is locked and limited as one")
        }
        if c.earlyTalkerWait > 0, !c.earlyTalker {
            out.append("earlytalker_wait is set but earlytalker is off: connections wait for nothing")
        }
        if c.lockOn.contains(.dnsbl), c.dnsbl.isEmpty {
            out.append("lock_on names dnsbl but no dnsbl sites are set: nobody is locked for a listing")
        }
        if !c.dnsbl.isEmpty, c.dnsbl.filter({ $0.weight > 0 }).reduce(0, { $0 + $1.weight }) < c.dnsblThreshold {
            out.append("dnsbl_threshold \(c.dnsblThreshold) is more than all positive dnsbl weights together: no client can ever be listed")
        }
        if c.authSkip.contains(.dnsbl), c.dnsbl.isEmpty {
            out.append("auth_skip names dnsbl but no dnsbl sites are set: it changes nothing")
        }
        if c.authSkip.contains(.regex), c.regexRules.isEmpty {
            out.append("auth_skip names regex but no regex_* option is set: it changes nothing")
        }
        if c.lockOn.contains(.regex), c.regexRules.isEmpty {
            out.append("lock_on names regex but no regex_* option is set: nobody is locked for a match")
        }
        if c.authSkip.contains(.spf), c.spf == .off {
            out.append("auth_skip names spf but spf is off: it changes nothing")
        }
        if c.spfFixedIP != nil, c.spf != .fixed {
            out.append("spf_fixed_ip is set but spf is not fixed: the address is not used")
        }
        if c.lockOn.contains(.spf), c.spf == .off || c.spfLogOnly {
            out.append("lock_on names spf but spf \(c.spf == .off ? "is off" : "is log only"): nobody is locked for it")
        }
        return out
    }

    /// The effective configuration as `option value` lines, every option in table order.
    public static func render(_ config: Config) -> String {
        Option.all.map { opt in
            if let v = opt.show(config) { return "\(opt.name) \(v)" }
            return "# \(opt.name) (not set)"
        }.joined(separator: "\n") + "\n"
    }

    public static var optionNames: [String] { Option.all.map(\.name) }
}

extension StringProtocol {
    func trimmingSpaces() -> String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\r" }
        guard let start = firstIndex(where: { !isSpace($0) }) else { return "" }
        let end = lastIndex(where: { !isSpace($0) })!
        return String(self[start...end])
    }
}
