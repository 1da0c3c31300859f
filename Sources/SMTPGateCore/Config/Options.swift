/// The option table: name, how to read a value, how to print the effective value. One table drives
/// parsing, `check-config` output and the list of known names.
struct Option: Sendable {
    let name: String
    let apply: @Sendable (inout Config, String) throws(OptionValueError) -> Void
    let show: @Sendable (Config) -> String?
}

struct OptionValueError: Error {
    let message: String
    init(_ message: String) { self.message = message }
}

enum OptionValue {
    static func uint(_ v: String, min: Int = 0, max: Int = Int(Int32.max)) throws(OptionValueError) -> Int {
        guard let n = Int(v), n >= min, n <= max else {
            throw OptionValueError("expected a whole number from \(min) to \(max), got '\(LogEscape.escape(v))'")
        }
        return n
    }

    static func port(_ v: String) throws(OptionValueError) -> Int {
        guard let n = Int(v), (1...65535).contains(n) else {
            throw OptionValueError("expected a port from 1 to 65535, got '\(LogEscape.escape(v))'")
        }
        return n
    }

    static func seconds(_ v: String) throws(OptionValueError) -> Double {
        guard let d = Double(v), d.isFinite, d > 0, d <= 86400 * 7 else {
            throw OptionValueError("expected seconds greater than 0 (at most one week), got '\(LogEscape.escape(v))'")
        }
        return d
    }

    static func bool(_ v: String) throws(OptionValueError) -> Bool {
        switch v.lowercased() {
        case "1", "yes", "on", "true": return true
        case "0", "no", "off", "false": return false
        default: throw OptionValueError("expected yes or no (also 1/0, on/off, true/false), got '\(LogEscape.escape(v))'")
        }
    }

    static func address(_ v: String) throws(OptionValueError) -> IPAddress {
        guard let a = IPAddress(v) else {
            throw OptionValueError("expected an IPv4 or IPv6 address, got '\(LogEscape.escape(v))'")
        }
        return a
    }

    static func name(_ v: String) throws(OptionValueError) -> String {
        guard !v.isEmpty, v.utf8.count <= 255, v.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7f }) else {
            throw OptionValueError("expected a single word of printable ASCII, got '\(LogEscape.escape(v))'")
        }
        return v
    }

    static func path(_ v: String) throws(OptionValueError) -> String {
        guard v.hasPrefix("/"), v.utf8.count <= 4096, !v.utf8.contains(0) else {
            throw OptionValueError("expected an absolute path, got '\(LogEscape.escape(v))'")
        }
        return v
    }

    /// smtp-gated syntax: `accepted`, `rejected`, a comma list of them, `none`/`no`/`off`, or the bit value.
    static func addressLogging(_ v: String) throws(OptionValueError) -> Config.AddressLogging {
        if let n = Int(v) {
            guard (0...3).contains(n) else {
                throw OptionValueError(n & 4 != 0 ? "the base64 flag (4) is not supported" : "expected 0 to 3, got \(n)")
            }
            return Config.AddressLogging(rawValue: n)
        }
        var set = Config.AddressLogging()
        for word in v.lowercased().split(separator: ",") {
            switch word.trimmingSpaces() {
            case "accepted": set.insert(.accepted)
            case "rejected": set.insert(.rejected)
            case "none", "no", "off": break
            case "base64": throw OptionValueError("the base64 flag is not supported")
            default: throw OptionValueError("expected accepted, rejected, accepted,rejected or none, got '\(LogEscape.escape(v))'")
            }
        }
        return set
    }

    static func showAddressLogging(_ l: Config.AddressLogging) -> String {
        switch l {
        case .all: return "accepted,rejected"
        case .accepted: return "accepted"
        case .rejected: return "rejected"
        default: return "none"
        }
    }

    static func choice<E: RawRepresentable & CaseIterable>(_ v: String, _: E.Type) throws(OptionValueError) -> E where E.RawValue == String {
        guard let e = E(rawValue: v.lowercased()) else {
            let known = E.allCases.map(\.rawValue).joined(separator: ", ")
            throw OptionValueError("expected one of \(known), got '\(LogEscape.escape(v))'")
        }
        return e
    }

    static func endpoint(_ v: String) throws(OptionValueError) -> String {
        guard ScannerEndpoint(v) != nil else {
            throw OptionValueError("expected an absolute unix socket path or ADDRESS:PORT with a literal address, got '\(LogEscape.escape(v))'")
        }
        return v
    }

    /// Header field name: RFC 5322 ftext, at most 64 characters.
    static func headerName(_ v: String) throws(OptionValueError) -> String {
        guard !v.isEmpty, v.utf8.count <= 64, v.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7f && $0 != 0x3a }) else {
            throw OptionValueError("expected a header field name (printable ASCII without ':' or spaces, at most 64), got '\(LogEscape.escape(v))'")
        }
        return v
    }

    /// Free text that ends up in a mail header: printable ASCII only, so it cannot start a new header line.
    static func headerText(_ v: String) throws(OptionValueError) -> String {
        guard v.utf8.count <= 200, v.utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7f }) else {
            throw OptionValueError("expected printable ASCII text of at most 200 characters, got '\(LogEscape.escape(v))'")
        }
        return v
    }

    static func spoolLeaveOn(_ v: String) throws(OptionValueError) -> Config.SpoolLeaveOn {
        var set = Config.SpoolLeaveOn()
        for word in v.lowercased().split(separator: ",") {
            switch word.trimmingSpaces() {
            case "error": set.insert(.error)
            case "spam": set.insert(.spam)
            case "virus": set.insert(.virus)
            case "always": set.insert(.always)
            case "never", "none": break
            default: throw OptionValueError("expected error, spam, virus, always or never (a comma list), got '\(LogEscape.escape(v))'")
            }
        }
        return set
    }

    /// Bytes, with smtp-gated's `K`, `M` or `G` (powers of 1024, a space before them allowed), or -1 for
    /// the inherited limit.
    static func byteLimit(_ v: String) throws(OptionValueError) -> Int? {
        if v == "-1" { return nil }
        var digits = v
        var unit = 1
        if let last = v.last, let u = ["k": 1 << 10, "m": 1 << 20, "g": 1 << 30][last.lowercased()] {
            unit = u
            digits = String(v.dropLast()).trimmingSpaces()
        }
        // 19 digits hold 2^60 in bytes, the form check-config renders a limit in.
        guard digits.utf8.count <= 19, let n = Int(digits), n >= 0, case let (bytes, false) = n.multipliedReportingOverflow(by: unit),
              bytes <= 1 << 60 else {
            throw OptionValueError("expected -1 or a size in bytes up to 2^60 (K, M or G allowed), got '\(LogEscape.escape(v))'")
        }
        return bytes
    }

    static func showByteLimit(_ n: Int?) -> String { n.map(String.init) ?? "-1" }

    static let levelNames = ["emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"]

    /// A syslog level by name (`warn` and `error` too) or number, 0 (emerg) to 7 (debug).
    static func logLevel(_ v: String) throws(OptionValueError) -> Int {
        let w = v.lowercased()
        if let i = levelNames.firstIndex(of: w) { return i }
        switch w {
        case "warn": return 4
        case "error": return 3
        case "panic": return 0
        default: break
        }
        guard w.utf8.count == 1, let n = Int(w), (0...7).contains(n) else {
            throw OptionValueError("expected a syslog level (\(levelNames.joined(separator: ", ")) or 0-7), got '\(LogEscape.escape(v))'")
        }
        return n
    }

    static func facility(_ v: String) throws(OptionValueError) -> SyslogFormat.Facility {
        guard let f = SyslogFormat.Facility(rawValue: v.lowercased()) else {
            throw OptionValueError("expected a syslog facility (\(SyslogFormat.Facility.allCases.map(\.rawValue).joined(separator: ", "))), got '\(LogEscape.escape(v))'")
        }
        return f
    }

    /// smtp-gated's comma list of human, flat and slots.
    static func statefileType(_ v: String) throws(OptionValueError) -> Config.StatefileType {
        var set = Config.StatefileType()
        for word in v.lowercased().split(separator: ",", omittingEmptySubsequences: false) {
            switch word.trimmingSpaces() {
            case "human": set.insert(.human)
            case "flat": set.insert(.flat)
            case "slots": set.insert(.slots)
            default: throw OptionValueError("expected human, flat or slots (a comma list), got '\(LogEscape.escape(v))'")
            }
        }
        return set
    }

    static func showStatefileType(_ s: Config.StatefileType) -> String {
        [(Config.StatefileType.human, "human"), (.flat, "flat"), (.slots, "slots")].filter { s.contains($0.0) }.map(\.1)
            .joined(separator: ",")
    }

    /// File permissions as smtp-gated writes them: octal, with or without the leading 0 (`0660`, `640`).
    static func octalMode(_ v: String) throws(OptionValueError) -> Int {
        guard (1...4).contains(v.utf8.count), v.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "7") }),
              let n = Int(v, radix: 8), n <= 0o777 else {
            throw OptionValueError("expected an octal file mode such as 0660, got '\(LogEscape.escape(v))'")
        }
        return n
    }

    static func showOctalMode(_ n: Int) -> String {
        let digits = String(n, radix: 8)
        return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }

    static func showSpoolLeaveOn(_ s: Config.SpoolLeaveOn) -> String {
        let names: [(Config.SpoolLeaveOn, String)] = [(.error, "error"), (.spam, "spam"), (.virus, "virus"), (.always, "always")]
        let shown = names.filter { s.contains($0.0) }.map(\.1)
        return shown.isEmpty ? "never" : shown.joined(separator: ",")
    }

    static func score(_ v: String) throws(OptionValueError) -> Double {
        guard let d = Double(v), d.isFinite, d > -1000, d < 1000 else {
            throw OptionValueError("expected a spam score, got '\(LogEscape.escape(v))'")
        }
        return d
    }

    /// A policy type's own parse error, as the option table reports errors.
    static func policy<T>(_ parse: () throws(PolicyValueError) -> T) throws(OptionValueError) -> T {
        do {
            return try parse()
        } catch {
            throw OptionValueError(error.message)
        }
    }

    /// Addresses or CIDR prefixes, separated by commas and/or spaces; `none` for an empty list.
    static func prefixes(_ v: String) throws(OptionValueError) -> [CIDR] {
        if v.lowercased() == "none" { return [] }
        var out: [CIDR] = []
        for word in v.split(whereSeparator: { $0 == "," || $0 == " " || $0 == "\t" }) {
            guard out.count < 10_000 else { throw OptionValueError("at most 10000 prefixes") }
            do {
                out.append(try CIDR(parsing: String(word)))
            } catch {
                throw OptionValueError(error.description)
            }
        }
        return out
    }

    static func showPrefixes(_ list: [CIDR]) -> String {
        list.isEmpty ? "none" : list.map(\.description).joined(separator: ",")
    }

    static func showSeconds(_ d: Double) -> String {
        d == d.rounded() ? String(Int(d)) : String(d)
    }
}

extension Option {
    static let all: [Option] = [
        Option(name: "proxy_name", apply: { c, v throws(OptionValueError) in c.proxyName = try OptionValue.name(v) }, show: { $0.proxyName }),
        Option(name: "bind_address", apply: { c, v throws(OptionValueError) in c.bindAddress = try OptionValue.address(v) }, show: { $0.bindAddress.text }),
        Option(name: "port", apply: { c, v throws(OptionValueError) in c.port = try OptionValue.port(v) }, show: { String($0.port) }),
        Option(name: "outgoing_addr", apply: { c, v throws(OptionValueError) in c.outgoingAddr = try OptionValue.address(v) }, show: { $0.outgoingAddr?.text }),
        Option(name: "mode", apply: { c, v throws(OptionValueError) in
            guard let m = Config.Mode(rawValue: v.lowercased()) else {
                let known = Config.Mode.allCases.map(\.rawValue).joined(separator: ", ")
                throw OptionValueError("unknown mode '\(LogEscape.escape(v))' (known: \(known))")
            }
            c.mode = m
        }, show: { $0.mode?.rawValue }),
        Option(name: "fixed_server", apply: { c, v throws(OptionValueError) in c.fixedServer = try OptionValue.address(v) }, show: { $0.fixedServer?.text }),
        Option(name: "fixed_server_port", apply: { c, v throws(OptionValueError) in c.fixedServerPort = try OptionValue.port(v) }, show: { String($0.fixedServerPort) }),
        Option(name: "pidfile", apply: { c, v throws(OptionValueError) in c.pidfile = try OptionValue.path(v) }, show: { $0.pidfile }),
        Option(name: "connect_queue", apply: { c, v throws(OptionValueError) in c.connectQueue = try OptionValue.uint(v, max: 65535) }, show: { String($0.connectQueue) }),
        Option(name: "pipeline_size", apply: { c, v throws(OptionValueError) in
            c.pipelineSize = try OptionValue.uint(v, min: 1, max: 100_000)
        }, show: { String($0.pipelineSize) }),
        Option(name: "on_takeover_cmds", apply: { c, v throws(OptionValueError) in c.onTakeoverCmds = try OptionValue.uint(v, max: 100_000) }, show: { String($0.onTakeoverCmds) }),
        Option(name: "max_connections", apply: { c, v throws(OptionValueError) in c.maxConnections = try OptionValue.uint(v, max: 10_000_000) }, show: { String($0.maxConnections) }),
        Option(name: "max_per_host", apply: { c, v throws(OptionValueError) in c.maxPerHost = try OptionValue.uint(v, max: 10_000_000) }, show: { String($0.maxPerHost) }),
        Option(name: "max_recipients", apply: { c, v throws(OptionValueError) in
            c.maxRecipients = try OptionValue.uint(v, min: 1, max: 100_000)
        }, show: { String($0.maxRecipients) }),
        Option(name: "timeout_connect", apply: { c, v throws(OptionValueError) in c.timeoutConnect = try OptionValue.seconds(v) }, show: { OptionValue.showSeconds($0.timeoutConnect) }),
        Option(name: "timeout_idle", apply: { c, v throws(OptionValueError) in c.timeoutIdle = try OptionValue.seconds(v) }, show: { OptionValue.showSeconds($0.timeoutIdle) }),
        Option(name: "timeout_direct", apply: { c, v throws(OptionValueError) in c.timeoutDirect = try OptionValue.seconds(v) }, show: { OptionValue.showSeconds($0.timeoutDirect) }),
        Option(name: "timeout_session", apply: { c, v throws(OptionValueError) in c.timeoutSession = try OptionValue.seconds(v) }, show: { OptionValue.showSeconds($0.timeoutSession) }),
        Option(name: "forbid_starttls", apply: { c, v throws(OptionValueError) in c.forbidStartTLS = try OptionValue.bool(v) }, show: { $0.forbidStartTLS ? "yes" : "no" }),
        Option(name: "log_helo", apply: { c, v throws(OptionValueError) in c.logHelo = try OptionValue.bool(v) }, show: { $0.logHelo ? "yes" : "no" }),
        Option(name: "log_mail_from", apply: { c, v throws(OptionValueError) in c.logMailFrom = try OptionValue.addressLogging(v) }, show: { OptionValue.showAddressLogging($0.logMailFrom) }),
        Option(name: "log_rcpt_to", apply: { c, v throws(OptionValueError) in c.logRcptTo = try OptionValue.addressLogging(v) }, show: { OptionValue.showAddressLogging($0.logRcptTo) }),
        // Above 256 means "never cut": the proxy refuses longer paths (RFC 5321 4.5.3.1.3) before they are logged.
        Option(name: "email_length", apply: { c, v throws(OptionValueError) in
            c.emailLength = min(try OptionValue.uint(v, min: 8), Config.maxEmailLength)
        }, show: { "\($0.emailLength)" }),
        Option(name: "remote_port", apply: { c, v throws(OptionValueError) in c.remotePort = try OptionValue.port(v) }, show: { String($0.remotePort) }),
        Option(name: "remote_udp_retries", apply: { c, v throws(OptionValueError) in
            c.remoteUDPRetries = try OptionValue.uint(v, min: 1, max: 20)
        }, show: { String($0.remoteUDPRetries) }),
        Option(name: "remote_udp_secret", apply: { c, v throws(OptionValueError) in
            c.remoteUDPSecret = UInt32(try OptionValue.uint(v, max: Int(UInt32.max)))
        }, show: { String($0.remoteUDPSecret) }),
        Option(name: "remote_udp_key_file", apply: { c, v throws(OptionValueError) in c.remoteUDPKeyFile = try OptionValue.path(v) }, show: { $0.remoteUDPKeyFile }),
        Option(name: "timeout_lookup", apply: { c, v throws(OptionValueError) in c.timeoutLookup = try OptionValue.seconds(v) }, show: { OptionValue.showSeconds($0.timeoutLookup) }),
        Option(name: "size_limit", apply: { c, v throws(OptionValueError) in c.sizeLimit = try OptionValue.uint(v, max: Int.max) }, show: { String($0.sizeLimit) }),
        Option(name: "proxy_protocol", apply: { c, v throws(OptionValueError) in c.proxyProtocol = try OptionValue.bool(v) }, show: { $0.proxyProtocol ? "yes" : "no" }),
        Option(name: "transparent_source", apply: { c, v throws(OptionValueError) in c.transparentSource = try OptionValue.bool(v) }, show: { $0.transparentSource ? "yes" : "no" }),
        Option(name: "set_user", apply: { c, v throws(OptionValueError) in c.setUser = try OptionValue.name(v) }, show: { $0.setUser }),
        Option(name: "set_group", apply: { c, v throws(OptionValueError) in c.setGroup = try OptionValue.name(v) }, show: { $0.setGroup }),
        Option(name: "spool_path", apply: { c, v throws(OptionValueError) in c.spoolPath = try OptionValue.path(v) }, show: { $0.spoolPath }),
        Option(name: "spool_leave_on", apply: { c, v throws(OptionValueError) in c.spoolLeaveOn = try OptionValue.spoolLeaveOn(v) }, show: { OptionValue.showSpoolLeaveOn($0.spoolLeaveOn) }),
        Option(name: "spool_memory", apply: { c, v throws(OptionValueError) in c.spoolMemory = try OptionValue.uint(v, max: 64 << 20) }, show: { String($0.spoolMemory) }),
        Option(name: "antivirus_type", apply: { c, v throws(OptionValueError) in c.antivirusType = v.lowercased() == "off" ? .none : try OptionValue.choice(v, Config.AntivirusType.self) }, show: { $0.antivirusType.rawValue }),
        Option(name: "antivirus_path", apply: { c, v throws(OptionValueError) in c.antivirusPath = try OptionValue.endpoint(v) }, show: { $0.antivirusPath }),
        Option(name: "antispam_type", apply: { c, v throws(OptionValueError) in c.antispamType = v.lowercased() == "off" ? .none : try OptionValue.choice(v, Config.AntispamType.self) }, show: { $0.antispamType.rawValue }),
        Option(name: "antispam_path", apply: { c, v throws(OptionValueError) in c.antispamPath = try OptionValue.endpoint(v) }, show: { $0.antispamPath }),
        Option(name: "scan_max_size", apply: { c, v throws(OptionValueError) in c.scanMaxSize = try OptionValue.uint(v, max: Int.max) }, show: { String($0.scanMaxSize) }),
        Option(name: "spam_max_size", apply: { c, v throws(OptionValueError) in c.spamMaxSize = try OptionValue.uint(v, max: Int.max) }, show: { String($0.spamMaxSize) }),
        Option(name: "spam_threshold", apply: { c, v throws(OptionValueError) in c.spamThreshold = try OptionValue.score(v) }, show: { String($0.spamThreshold) }),
        Option(name: "spam_action", apply: { c, v throws(OptionValueError) in c.spamAction = try OptionValue.choice(v, Config.SpamAction.self) }, show: { $0.spamAction.rawValue }),
        Option(name: "timeout_scanner", apply: { c, v throws(OptionValueError) in c.timeoutScanner = try OptionValue.seconds(v) }, show: { OptionValue.showSeconds($0.timeoutScanner) }),
        Option(name: "timeout_spam", apply: { c, v throws(OptionValueError) in c.timeoutSpam = try OptionValue.seconds(v) }, show: { OptionValue.showSeconds($0.timeoutSpam) }),
        Option(name: "ignore_errors", apply: { c, v throws(OptionValueError) in c.ignoreErrors = try OptionValue.bool(v) }, show: { $0.ignoreErrors ? "yes" : "no" }),
        Option(name: "max_scans", apply: { c, v throws(OptionValueError) in c.maxScans = try OptionValue.uint(v, min: 1, max: 10_000) }, show: { String($0.maxScans) }),
        Option(name: "nat_header", apply: { c, v throws(OptionValueError) in c.natHeader = try OptionValue.headerName(v) }, show: { $0.natHeader }),
        Option(name: "nat_header_type", apply: { c, v throws(OptionValueError) in c.natHeaderType = try OptionValue.choice(v, Config.NatHeaderType.self) }, show: { $0.natHeaderType.rawValue }),
        Option(name: "abuse", apply: { c, v throws(OptionValueError) in c.abuse = v.isEmpty ? nil : try OptionValue.headerText(v) }, show: { $0.abuse }),
        Option(name: "action_script", apply: { c, v throws(OptionValueError) in c.actionScript = try OptionValue.path(v) }, show: { $0.actionScript }),
        Option(name: "timeout_action", apply: { c, v throws(OptionValueError) in c.timeoutAction = try OptionValue.seconds(v) }, show: { OptionValue.showSeconds($0.timeoutAction) }),
        Option(name: "max_actions", apply: { c, v throws(OptionValueError) in c.maxActions = try OptionValue.uint(v, min: 1, max: 1000) }, show: { String($0.maxActions) }),
        Option(name: "lock_on", apply: { c, v throws(OptionValueError) in c.lockOn = try OptionValue.policy { () throws(PolicyValueError) in try LockCause.parseList(v) } }, show: { LockCause.show($0.lockOn) }),
        Option(name: "lock_duration", apply: { c, v throws(OptionValueError) in
            guard let n = Int(v), n >= -1, n <= 366 * 86400 else {
                throw OptionValueError("expected seconds from 1 to one year, 0 (no locks) or -1 (until removed), got '\(LogEscape.escape(v))'")
            }
            c.lockDuration = n
        }, show: { String($0.lockDuration) }),
        Option(name: "lock_exempt", apply: { c, v throws(OptionValueError) in c.lockExempt = try OptionValue.prefixes(v) }, show: { OptionValue.showPrefixes($0.lockExempt) }),
        Option(name: "lock_path", apply: { c, v throws(OptionValueError) in c.lockPath = try OptionValue.path(v) }, show: { $0.lockPath }),
        Option(name: "nat_sources", apply: { c, v throws(OptionValueError) in c.natSources = try OptionValue.prefixes(v) }, show: { OptionValue.showPrefixes($0.natSources) }),
        Option(name: "lock_ipv6_prefix", apply: { c, v throws(OptionValueError) in c.lockIPv6Prefix = try OptionValue.uint(v, min: 1, max: 128) }, show: { String($0.lockIPv6Prefix) }),
        Option(name: "ratelimit_ipv6_prefix", apply: { c, v throws(OptionValueError) in c.ratelimitIPv6Prefix = try OptionValue.uint(v, min: 1, max: 128) }, show: { String($0.ratelimitIPv6Prefix) }),
        Option(name: "ratelimit_expiration", apply: { c, v throws(OptionValueError) in c.ratelimitExpiration = try OptionValue.uint(v, min: 1, max: 31 * 86400) }, show: { String($0.ratelimitExpiration) }),
        Option(name: "ratelimit_path", apply: { c, v throws(OptionValueError) in c.ratelimitPath = try OptionValue.path(v) }, show: { $0.ratelimitPath }),
        Option(name: "ratelimit_generation", apply: { c, v throws(OptionValueError) in c.ratelimitGeneration = try OptionValue.uint(v, max: Int.max) }, show: { String($0.ratelimitGeneration) }),
        Option(name: "ratelimit_clients", apply: { c, v throws(OptionValueError) in c.ratelimitClients = try OptionValue.uint(v, min: 1000, max: 100_000_000) }, show: { String($0.ratelimitClients) }),
        Option(name: "ratelimit_override", apply: { c, v throws(OptionValueError) in
            guard v.hasPrefix("cidr:") else { throw OptionValueError("expected cidr:/ABSOLUTE/FILE, got '\(LogEscape.escape(v))'") }
            c.ratelimitOverride = try OptionValue.path(String(v.dropFirst("cidr:".count)))
        }, show: { $0.ratelimitOverride.map { "cidr:" + $0 } }),
        Option(name: "max_per_ident", apply: { c, v throws(OptionValueError) in c.maxPerIdent = try OptionValue.uint(v, max: 10_000_000) }, show: { String($0.maxPerIdent) }),
        Option(name: "max_load", apply: { c, v throws(OptionValueError) in
            guard let d = Double(v), d.isFinite, d >= 0, d <= 100_000 else {
                throw OptionValueError("expected a load average (0 for off), got '\(LogEscape.escape(v))'")
            }
            c.maxLoad = d
        }, show: { $0.maxLoad == 0 ? "0" : String($0.maxLoad) }),
        Option(name: "state_store", apply: { c, v throws(OptionValueError) in
            if v.hasPrefix("postgresql:") {
                do throws(PostgresURL.ParseError) {
                    _ = try PostgresURL.parse(v)
                } catch {
                    throw OptionValueError("\(error)")
                }
            } else {
                guard v.hasPrefix("sqlite:/"), v.utf8.count <= 4096, !v.utf8.contains(0) else {
                    throw OptionValueError("expected sqlite:/ABSOLUTE/PATH or postgresql://USER@HOST/DB, got '\(LogEscape.escape(v))'")
                }
            }
            c.stateStore = v
            c.stateStoreSet = true
        }, show: { c in c.stateStoreSet ? (c.stateStorePostgres?.description ?? c.stateStore) : nil }),
        Option(name: "control_path", apply: { c, v throws(OptionValueError) in
            let p = try OptionValue.path(v)
            // sockaddr_un holds 108 bytes with the terminating NUL.
            guard p.utf8.count < 108 else { throw OptionValueError("a unix socket path is at most 107 bytes, got \(p.utf8.count)") }
            c.controlPath = p
        }, show: { $0.controlPath }),
        Option(name: "spool_header", apply: { c, v throws(OptionValueError) in
            c.spoolHeader = v.lowercased() == "none" ? nil : try OptionValue.headerName(v)
        }, show: { $0.spoolHeader ?? "none" }),
        Option(name: "spool_perm", apply: { c, v throws(OptionValueError) in c.spoolPerm = try OptionValue.octalMode(v) },
               show: { OptionValue.showOctalMode($0.spoolPerm) }),
        Option(name: "spam_max_load", apply: { c, v throws(OptionValueError) in
            guard let d = Double(v), d.isFinite, d >= 0, d <= 10_000 else {
                throw OptionValueError("expected a load average from 0 (off) to 10000, got '\(LogEscape.escape(v))'")
            }
            c.spamMaxLoad = d
        }, show: { String($0.spamMaxLoad) }),
        Option(name: "priority", apply: { c, v throws(OptionValueError) in
            guard let n = Int(v), (-20...19).contains(n) else {
                throw OptionValueError("expected a nice value from -20 to 19, got '\(LogEscape.escape(v))'")
            }
            c.priority = n
        }, show: { $0.priority.map(String.init) }),
        Option(name: "limit_core_size", apply: { c, v throws(OptionValueError) in c.limits[.coreSize] = try OptionValue.byteLimit(v) },
               show: { OptionValue.showByteLimit($0.limits[.coreSize]) }),
        Option(name: "limit_virt_size", apply: { c, v throws(OptionValueError) in c.limits[.virtSize] = try OptionValue.byteLimit(v) },
               show: { OptionValue.showByteLimit($0.limits[.virtSize]) }),
        Option(name: "limit_data_size", apply: { c, v throws(OptionValueError) in c.limits[.dataSize] = try OptionValue.byteLimit(v) },
               show: { OptionValue.showByteLimit($0.limits[.dataSize]) }),
        Option(name: "limit_fsize", apply: { c, v throws(OptionValueError) in c.limits[.fsize] = try OptionValue.byteLimit(v) },
               show: { OptionValue.showByteLimit($0.limits[.fsize]) }),
        Option(name: "chroot_path", apply: { _, v throws(OptionValueError) in
            guard v.isEmpty || v == "/" else {
                throw OptionValueError("is refused: a reload, the log reopen, the DNS resolver and the action script need the whole file system; confine the daemon with systemd (ProtectSystem=, ReadWritePaths=, RootDirectory=) instead")
            }
        }, show: { _ in nil }),
        Option(name: "dspam_storage", apply: { _, _ throws(OptionValueError) in
            throw OptionValueError("is refused: DSPAM is not supported; scan with antispam_type spamassassin (spamd)")
        }, show: { _ in nil }),
        Option(name: "log_facility", apply: { c, v throws(OptionValueError) in c.logFacility = try OptionValue.facility(v) },
               show: { $0.logFacility.rawValue }),
        Option(name: "log_level", apply: { c, v throws(OptionValueError) in c.logLevel = try OptionValue.logLevel(v) },
               show: { OptionValue.levelNames[$0.logLevel] }),
        Option(name: "admin_listen", apply: { c, v throws(OptionValueError) in
            if v.lowercased() == "off" { c.adminListen = nil; return }
            guard let end = AdminEndpoint(v) else {
                throw OptionValueError("expected ADDRESS:PORT with a literal address ([::1]:9125 for IPv6) or off, got '\(LogEscape.escape(v))'")
            }
            c.adminListen = end
        }, show: { $0.adminListen?.description ?? "off" }),
        Option(name: "admin_allow", apply: { c, v throws(OptionValueError) in c.adminAllow = try OptionValue.prefixes(v) },
               show: { OptionValue.showPrefixes($0.adminAllow) }),
        Option(name: "statefile", apply: { c, v throws(OptionValueError) in c.statefile = try OptionValue.path(v) }, show: { $0.statefile }),
        Option(name: "statefile_type", apply: { c, v throws(OptionValueError) in c.statefileType = try OptionValue.statefileType(v) },
               show: { OptionValue.showStatefileType($0.statefileType) }),
        Option(name: "statefile_perm", apply: { c, v throws(OptionValueError) in c.statefilePerm = try OptionValue.octalMode(v) },
               show: { OptionValue.showOctalMode($0.statefilePerm) }),
        Option(name: "dnsbl", apply: { c, v throws(OptionValueError) in c.dnsbl = try OptionValue.policy { () throws(PolicyValueError) in try DNSBLSite.parseList(v) } }, show: { DNSBLSite.show($0.dnsbl) }),
        Option(name: "dnsbl_threshold", apply: { c, v throws(OptionValueError) in c.dnsblThreshold = try OptionValue.uint(v, min: 1, max: 1000) }, show: { String($0.dnsblThreshold) }),
        Option(name: "dns_server", apply: { c, v throws(OptionValueError) in c.dnsServers = try OptionValue.policy { () throws(PolicyValueError) in try DNSServer.parseList(v) } }, show: { c in
            c.dnsServers.isEmpty ? nil : c.dnsServers.map(\.description).joined(separator: ",")
        }),
        Option(name: "timeout_dns", apply: { c, v throws(OptionValueError) in
            let d = try OptionValue.seconds(v)
            guard d <= 300 else { throw OptionValueError("expected seconds greater than 0 and at most 300, got '\(LogEscape.escape(v))'") }
            c.timeoutDNS = d
        }, show: { OptionValue.showSeconds($0.timeoutDNS) }),
        Option(name: "earlytalker", apply: { c, v throws(OptionValueError) in c.earlyTalker = try OptionValue.bool(v) }, show: { $0.earlyTalker ? "yes" : "no" }),
        Option(name: "earlytalker_wait", apply: { c, v throws(OptionValueError) in
            guard let d = Double(v), d.isFinite, d >= 0, d <= 60 else {
                throw OptionValueError("expected seconds from 0 (no wait) to 60, got '\(LogEscape.escape(v))'")
            }
            c.earlyTalkerWait = d
        }, show: { OptionValue.showSeconds($0.earlyTalkerWait) }),
        Option(name: "auth_require", apply: { c, v throws(OptionValueError) in
            guard let r = AuthRequirement(rawValue: v.lowercased()) else {
                throw OptionValueError("expected no, ifsupported or mandatory, got '\(LogEscape.escape(v))'")
            }
            c.authRequire = r
        }, show: { $0.authRequire.rawValue }),
        Option(name: "auth_skip", apply: { c, v throws(OptionValueError) in c.authSkip = try AuthSkip.parseList(v) }, show: { c in
            c.authSkip.isEmpty ? "none" : c.authSkip.sorted().map(\.rawValue).joined(separator: ",")
        }),
    ] + RegexRule.optionNames.map { action, field in
        Option(name: "regex_\(action.rawValue)_\(field.rawValue)", apply: { c, v throws(OptionValueError) in
            let regex = try RegexRule.compile(v)
            c.regexRules.append(RegexRule(action: action, field: field, regex: regex))
            c.regexRules.sort { RegexRule.order($0) < RegexRule.order($1) }
        }, show: { c in c.regexRules.first { $0.action == action && $0.field == field }?.regex.pattern })
    }
    + Option.restrictionOptions
    + ReplyText.allCases.map { key in
        Option(name: key.optionName, apply: { c, v throws(OptionValueError) in
            c.replyTexts[key] = try ReplyTemplate(parsing: v, for: key)
        }, show: { c in c.replyTexts[key]?.source })
    }
    + RateKind.allCases.map { kind in
        Option(name: kind.optionName, apply: { c, v throws(OptionValueError) in
            // Read again by the parser once the file's `ratelimit_expiration` is known.
            let spec = try OptionValue.policy { () throws(PolicyValueError) in
                try RateLimitSpec.parse(v, defaultSeconds: c.ratelimitExpiration)
            }
            c.rateLimits[kind] = spec.isOff ? nil : spec
        }, show: { c in c.rateLimits[kind].map(RateLimitSpec.show) ?? "0" })
    } + [
        // A forward's own rules; before any section the parser files them as global rules instead.
        Option(name: "allow", apply: { c, v throws(OptionValueError) in c.forwardRules.allow.append(try AddressPattern(parsing: v)) },
               show: { c in c.forwardRules.allow.isEmpty ? nil : c.forwardRules.allow.map(\.text).joined(separator: " ") }),
        Option(name: "deny", apply: { c, v throws(OptionValueError) in c.forwardRules.deny.append(try AddressPattern(parsing: v)) },
               show: { c in c.forwardRules.deny.isEmpty ? nil : c.forwardRules.deny.map(\.text).joined(separator: " ") }),
        Option(name: "syslog_name", apply: { c, v throws(OptionValueError) in
            guard ConfigBlocks.isName(v) || v.utf8.contains(0x2f) && v.split(separator: "/").allSatisfy({ ConfigBlocks.isName(String($0)) }) else {
                throw OptionValueError("expected 1 to 64 letters, digits, '-', '_', '.' or '/', got '\(LogEscape.escape(v))'")
            }
            c.syslogName = v
        }, show: { $0.syslogName }),
        Option(name: "shutdown_timeout", apply: { c, v throws(OptionValueError) in c.shutdownTimeout = try OptionValue.seconds(v) }, show: { OptionValue.showSeconds($0.shutdownTimeout) }),
    ]

    static let byName: [String: Option] = Dictionary(uniqueKeysWithValues: all.map { ($0.name, $0) })
}
