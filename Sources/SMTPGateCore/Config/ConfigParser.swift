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

    /// A file without sections: its one listener's options. A file with sections is `parseFile`'s.
    public static func parse(_ text: String, file: String) throws(ConfigError) -> Config {
        let parsed = try parseFile(text, file: file)
        guard !parsed.sectioned, let main = parsed.listeners.first else {
            throw ConfigError(file: file, line: nil, message: "the file has sections: read it as a whole")
        }
        return main.config
    }

    public static func parseFile(bytes: [UInt8], file: String) throws(ConfigError) -> ConfigFile {
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw ConfigError(file: file, line: firstInvalidLine(bytes), message: "line is not valid UTF-8 text")
        }
        return try parseFile(text, file: file)
    }

    /// Options before the first section are global; each `[listener NAME]` or `[forward NAME]` section starts
    /// from them and overrides what it sets. Without `[listener]` sections the global options are the listener
    /// `main`, unless the file has only forwards and sets no `mode` globally.
    public static func parseFile(_ text: String, file: String) throws(ConfigError) -> ConfigFile {
        let blocks = try ConfigBlocks.read(text, file: file)
        var global = Config()
        let globalLines = try apply(blocks.global, to: &global, scope: nil, file: file)
        var listeners: [ListenerSection] = []
        var forwards: [ForwardSection] = []
        for section in blocks.sections {
            var config = global
            let lines = try apply(section.options, to: &config, scope: section.kind, file: file)
            let all = globalLines.merging(lines) { _, own in own }
            switch section.kind {
            case .listener:
                try validate(config, file: file, lines: all, section: section)
                listeners.append(ListenerSection(name: section.name, config: config, line: section.line))
            case .forward:
                let forward = try forwardSection(section, config: config, lines: all, file: file)
                forwards.append(forward)
            }
        }
        if listeners.isEmpty, forwards.isEmpty || global.mode != nil {
            try validate(global, file: file, lines: globalLines, section: nil)
            listeners.append(ListenerSection(name: ConfigFile.mainListener, config: global))
        }
        let parsed = ConfigFile(global: global, listeners: listeners, forwards: forwards, sectioned: !blocks.sections.isEmpty)
        try ConfigBlocks.checkEndpoints(parsed, file: file)
        return parsed
    }

    /// Applies one block's options in order; the lines they were set on, by name. `scope` is the section's
    /// kind (nil for the global block, where every option may be set).
    static func apply(_ options: [ConfigBlocks.Entry], to config: inout Config, scope: ConfigBlocks.Kind?,
                      file: String) throws(ConfigError) -> [String: Int] {
        var seen: [String: Int] = [:]
        var rateValues: [RateKind: String] = [:]
        for entry in options {
            let (name, value, lineNo) = (entry.name, entry.value, entry.line)
            if let inert = InertOption.byName[name] {
                guard scope == nil else {
                    throw ConfigError(file: file, line: lineNo, message: "option '\(name)' is the daemon's: set it before the first section")
                }
                if let earlier = seen[name] {
                    throw ConfigError(file: file, line: lineNo, message: "option '\(name)' is already set on line \(earlier)")
                }
                do {
                    try inert.check(value)
                } catch {
                    throw ConfigError(file: file, line: lineNo, message: "option '\(name)': \(error.message)")
                }
                seen[name] = lineNo
                config.inertOptions.append(InertSetting(name: name, value: value))
                continue
            }
            guard let option = Option.byName[name] else {
                var message = "unknown option '\(LogEscape.escape(name))'"
                if let near = OptionSuggestion.nearest(name, among: Option.byName.keys) { message += " (did you mean '\(near)'?)" }
                throw ConfigError(file: file, line: lineNo, message: message)
            }
            guard !value.isEmpty else {
                throw ConfigError(file: file, line: lineNo, message: "option '\(name)' needs a value")
            }
            if let scope {
                let place = OptionScope.of(name)
                switch (scope, place) {
                case (_, .daemon):
                    throw ConfigError(file: file, line: lineNo, message: "option '\(name)' is the daemon's: set it before the first section")
                case (.listener, .forward):
                    throw ConfigError(file: file, line: lineNo, message: "option '\(name)' belongs in [forward] sections (SMTP listeners use client_restrictions)")
                case (.forward, .listener):
                    throw ConfigError(file: file, line: lineNo, message: "option '\(name)' is for SMTP listeners, not [forward] sections")
                default:
                    break
                }
            }
            if OptionScope.forwardOptions.contains(name) {
                // Lists by nature: one pattern a line, as many lines as needed.
                do {
                    let pattern = try AddressPattern(parsing: value)
                    switch (scope, name) {
                    case (nil, "allow"): config.forwardRules.globalAllow.append(pattern)
                    case (nil, _): config.forwardRules.globalDeny.append(pattern)
                    case (_, "allow"): config.forwardRules.allow.append(pattern)
                    default: config.forwardRules.deny.append(pattern)
                    }
                } catch {
                    throw ConfigError(file: file, line: lineNo, message: "option '\(name)': \(error.message)")
                }
                if seen[name] == nil { seen[name] = lineNo }
                continue
            }
            if let earlier = seen[name] {
                throw ConfigError(file: file, line: lineNo, message: "option '\(name)' is already set on line \(earlier)")
            }
            seen[name] = lineNo
            if scope == .forward, name == "port" || name == "fixed_server_port" {
                // A forward's ends may be ranges; the first port stands for the range in the shared checks.
                do {
                    let range = try PortRange(parsing: value)
                    if name == "port" { config.port = range.lower } else { config.fixedServerPort = range.lower }
                } catch {
                    throw ConfigError(file: file, line: lineNo, message: "option '\(name)': \(error.message)")
                }
                continue
            }
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
        return seen
    }

    /// A forward's effective options, its port ranges (read again from its own lines, or the inherited
    /// single ports) and its checks: an SMTP-only mode is refused, a destination range has the length of
    /// the listening one or is a single port.
    static func forwardSection(_ section: ConfigBlocks.Section, config: Config, lines: [String: Int],
                               file: String) throws(ConfigError) -> ForwardSection {
        func fail(_ option: String, _ message: String) -> ConfigError {
            ConfigError(file: file, line: lines[option] ?? section.line, message: "[forward \(section.name)]: " + message)
        }
        func range(_ name: String, _ inherited: Int) -> PortRange {
            let own = section.options.last { $0.name == name }.flatMap { try? PortRange(parsing: $0.value) }
            return own ?? PortRange(lower: inherited, upper: inherited)!
        }
        try validate(config, file: file, lines: lines, section: section)
        if config.mode == .fixedXClient {
            throw fail("mode", "mode fixed+xclient is SMTP's (XCLIENT is an SMTP command): a forward uses fixed, netfilter, tproxy, remote-udp or getsockname")
        }
        let ports = range("port", config.port)
        let targets = range("fixed_server_port", config.fixedServerPort)
        if config.mode?.isFixed == true, targets.count != 1, targets.count != ports.count {
            throw fail("fixed_server_port", "fixed_server_port \(targets) has \(targets.count) ports and port \(ports) has \(ports.count): a range maps one to one onto a range of the same length (or give a single port)")
        }
        if config.mode?.isFixed != true, ports.count > 1, lines["fixed_server_port"] != nil {
            throw fail("fixed_server_port", "fixed_server_port is the destination of mode fixed; mode \(config.mode!.rawValue) learns each connection's destination")
        }
        return ForwardSection(name: section.name, config: config, line: section.line, ports: ports, targetPorts: targets)
    }

    static func validate(_ c: Config, file: String, lines: [String: Int], section: ConfigBlocks.Section?) throws(ConfigError) {
        let prefix = section.map { "[\($0.kind.rawValue) \($0.name)]: " } ?? ""
        guard let mode = c.mode else {
            throw ConfigError(file: file, line: section?.line, message: prefix + "option 'mode' is not set (one of: \(Config.Mode.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        func fail(_ option: String, _ message: String) -> ConfigError {
            ConfigError(file: file, line: lines[option] ?? lines["mode"] ?? section?.line, message: prefix + message)
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

    /// The warnings of every listener and forward, each named when the file has sections.
    public static func warnings(_ file: ConfigFile) -> [String] {
        // Once, for the daemon: every section inherits the global options.
        var out = file.global.inertOptions.map(\.name).compactMap { name in
            InertOption.byName[name].map { "\(name) has no effect in SMTPGate: \($0.why)" }
        }
        guard file.sectioned else { return out + file.listeners.flatMap { warnings($0.config) } }
        for l in file.listeners { out += warnings(l.config).map { "[listener \(l.name)] \($0)" } }
        for f in file.forwards { out += f.warnings }
        return out
    }

    /// Scanning with STARTTLS relayed leaves every message after a STARTTLS unscanned.
    public static let blindMessages = "messages after STARTTLS are relayed encrypted and not scanned (forbid_starttls yes scans every message)"

    /// What is valid but probably not meant: `check-config` prints these, the daemon logs them at start.
    public static func warnings(_ c: Config) -> [String] {
        var out: [String] = []
        if c.scansWithSTARTTLSRelayed { out.append(blindMessages) }
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
        }.joined(separator: "\n") + "\n" + inertLines(config)
    }

    /// smtp-gated's tuning options as the file set them, under a comment that says they change nothing.
    static func inertLines(_ c: Config) -> String {
        guard !c.inertOptions.isEmpty else { return "" }
        return "# smtp-gated options with no effect here (see check-config's warnings)\n"
            + c.inertOptions.map { $0.value.isEmpty ? "\($0.name)\n" : "\($0.name) \($0.value)\n" }.joined()
    }

    /// A file with sections as `check-config` shows it: the daemon's options, then every listener's and
    /// forward's effective options; a file without sections as `render` shows its listener.
    /// What a reload changes, for its log line: the daemon's options by name, a listener's or forward's
    /// (kept ones; added and removed ones are named on their own) as `NAME:option`, in table order.
    /// A file without sections names its options alone.
    public static func changes(from old: ConfigFile, to new: ConfigFile) -> [String] {
        func differ(_ a: Config, _ b: Config, _ keep: (OptionScope) -> Bool) -> [String] {
            Option.all.filter { keep(OptionScope.of($0.name)) && $0.show(a) != $0.show(b) }.map(\.name)
        }
        guard old.sectioned || new.sectioned else {
            return differ(old.global, new.global) { _ in true }
        }
        var out = differ(old.global, new.global) { $0 == .daemon }
        if old.global.forwardRules.globalAllow.map(\.text) != new.global.forwardRules.globalAllow.map(\.text) { out.append("allow") }
        if old.global.forwardRules.globalDeny.map(\.text) != new.global.forwardRules.globalDeny.map(\.text) { out.append("deny") }
        for l in new.listeners {
            guard let was = old.listener(named: l.name) else { continue }
            out += differ(was.config, l.config) { $0.inListener }.map { "\(l.name):\($0)" }
        }
        for f in new.forwards {
            guard let was = old.forwards.first(where: { $0.name == f.name }) else { continue }
            var names = differ(was.config, f.config) { $0 == .connection }
            if was.ports != f.ports, !names.contains("port") { names.append("port") }
            if was.targetPorts != f.targetPorts, !names.contains("fixed_server_port") { names.append("fixed_server_port") }
            if was.config.forwardRules.allow.map(\.text) != f.config.forwardRules.allow.map(\.text) { names.append("allow") }
            if was.config.forwardRules.deny.map(\.text) != f.config.forwardRules.deny.map(\.text) { names.append("deny") }
            out += names.map { "\(f.name):\($0)" }
        }
        return out
    }

    public static func render(_ file: ConfigFile) -> String {
        guard file.sectioned else { return file.listeners.map { render($0.config) }.joined() }
        func lines(_ c: Config, _ shown: [String: String] = [:], _ keep: (OptionScope) -> Bool) -> String {
            Option.all.filter { keep(OptionScope.of($0.name)) }.map { opt in
                if let v = shown[opt.name] ?? opt.show(c) { return "\(opt.name) \(v)" }
                return "# \(opt.name) (not set)"
            }.joined(separator: "\n") + "\n"
        }
        func rules(_ word: String, _ patterns: [AddressPattern]) -> String {
            patterns.map { "\(word) \($0.text)\n" }.joined()
        }
        let g = file.global.forwardRules
        var out = "# the daemon's options (before the first section)\n" + lines(file.global) { $0 == .daemon }
        out += inertLines(file.global)
        out += rules("allow", g.globalAllow) + rules("deny", g.globalDeny)
        for l in file.listeners {
            out += "\n[listener \(l.name)]\n" + lines(l.config) { $0.inListener }
        }
        for f in file.forwards {
            out += "\n[forward \(f.name)]\n"
            out += lines(f.config, ["port": "\(f.ports)", "fixed_server_port": "\(f.targetPorts)"]) { $0 == .connection }
            out += "# global rules first (rinetd's order), then the forward's; a deny wins\n"
            out += rules("allow", f.config.forwardRules.allow) + rules("deny", f.config.forwardRules.deny)
        }
        return out
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
