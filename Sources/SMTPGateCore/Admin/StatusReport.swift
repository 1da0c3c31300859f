/// `smtpgate status` as a person reads it (a summary and two tables) or as a program does (one JSON
/// object). Client-controlled text (HELO, ident) is escaped as in the log, then written as one printable
/// ASCII word (spaces and UTF-8 as `\xHH` too) and cut to a table cell, so it cannot break a row.
public enum StatusReport {
    public static func text(_ s: DaemonStatus) -> String {
        s.sessions.isEmpty ? human(s) : human(s) + "\n" + slots(s)
    }

    /// The summary and the listener table.
    public static func human(_ s: DaemonStatus) -> String {
        var out = "smtpgate \(s.version), pid \(s.pid), up \(duration(s.uptime)), config \(LogEscape.escape(s.configFile))\n"
        let open = s.listeners.reduce(0) { $0 + $1.sessions }
        out += "sessions \(open)"
        if let locks = s.locks {
            out += ", locks \(locks), rate-counted clients \(s.trackedClients ?? 0)\n"
        } else {
            out += ", abuse control off\n"
        }
        if let found = foundLine(s) { out += found + "\n" }
        return out + "\n" + table(["LISTENER", "KIND", "ADDRESS", "MODE", "SESSIONS", "ENDED", "REFUSED", "TRANS", "IN", "OUT"],
                                   s.listeners.map { l in
                                       [l.name, l.kind.rawValue, l.address, l.mode, String(l.sessions), String(l.counts.ended),
                                        String(l.counts.refused), String(l.counts.transactions), String(l.counts.bytesIn),
                                        String(l.counts.bytesOut)]
                                   })
    }

    /// What smtp-gated's state file called found counters: scans by result, locks made, command refusals.
    static func foundLine(_ s: DaemonStatus) -> String? {
        let totals = Dictionary(s.counters.map { ($0.name, $0.value) }, uniquingKeysWith: +)
        let shown: [(String, MetricFamily)] = [("scans", .scans), ("locks made", .locksCreated),
                                               ("commands refused", .commandRefusals), ("rate-limit hits", .rateLimitHits)]
        let parts = shown.compactMap { label, f in totals[f.name].map { "\(label) \(ControlReply.number($0))" } }
        return parts.isEmpty ? nil : parts.joined(separator: ", ")
    }

    /// The session table, oldest first.
    public static func slots(_ s: DaemonStatus) -> String {
        var out = table(["SESSION", "LISTENER", "STATE", "AGE", "CLIENT", "DESTINATION", "TRANS", "IN", "OUT", "IDENT", "HELO"],
                        s.sessions.map { x in
                            [x.id, x.listener, x.state, duration(x.age), x.client, x.destination, String(x.transactions),
                             String(x.bytesIn), String(x.bytesOut), cell(x.ident), cell(x.helo, escaped: true)]
                        })
        if s.sessionsOmitted > 0 { out += "(\(s.sessionsOmitted) more sessions not listed)\n" }
        return out
    }

    /// One `daemon`, then one `listener` and one `session` line each, `key=value` with every value one
    /// printable ASCII word (`\xHH` for anything else, spaces included): for scripts that read the state file.
    public static func flat(_ s: DaemonStatus) -> String {
        func line(_ head: String, _ fields: [(String, String)]) -> String {
            ([head] + fields.map { "\($0.0)=\(LogEscape.word($0.1))" }).joined(separator: " ") + "\n"
        }
        var out = line("daemon", [
            ("version", s.version), ("pid", String(s.pid)), ("started", ControlReply.number(s.started)),
            ("uptime", LogFormat.formatSeconds(s.uptime)), ("config", s.configFile),
            ("sessions", String(s.listeners.reduce(0) { $0 + $1.sessions })), ("sessions_omitted", String(s.sessionsOmitted)),
            ("locks", s.locks.map(String.init) ?? "-"), ("tracked_clients", s.trackedClients.map(String.init) ?? "-"),
        ])
        for c in s.counters {
            out += line("counter", [("name", c.name), ("total", ControlReply.number(c.value))])
        }
        for l in s.listeners {
            out += line("listener", [("name", l.name), ("kind", l.kind.rawValue), ("address", l.address), ("mode", l.mode),
                                     ("sessions", String(l.sessions)), ("ended", String(l.counts.ended)),
                                     ("refused", String(l.counts.refused)), ("trans", String(l.counts.transactions)),
                                     ("bytes_in", String(l.counts.bytesIn)), ("bytes_out", String(l.counts.bytesOut))])
        }
        for x in s.sessions {
            out += line("session", [
                ("id", x.id), ("listener", x.listener), ("kind", x.kind.rawValue), ("state", x.state),
                ("age", LogFormat.formatSeconds(x.age)), ("client", x.client), ("dest", x.destination),
                ("trans", String(x.transactions)), ("bytes_in", String(x.bytesIn)), ("bytes_out", String(x.bytesOut)),
                ("ident", x.ident.map(LogEscape.escape) ?? "-"), ("helo", x.helo ?? "-"),
            ])
        }
        return out
    }

    /// The state file (`statefile_type`): the parts asked for, in the order human, flat, slots.
    public static func statefile(_ s: DaemonStatus, _ types: Config.StatefileType) -> String {
        var parts: [String] = []
        if types.contains(.human) { parts.append(human(s)) }
        if types.contains(.flat) { parts.append(flat(s)) }
        if types.contains(.slots) { parts.append(slots(s)) }
        return parts.joined(separator: "\n")
    }

    public static func json(_ s: DaemonStatus) -> String {
        func str(_ v: String?) -> String { v.map(LogFormat.jsonString) ?? "null" }
        func num(_ v: Int?) -> String { v.map(String.init) ?? "null" }
        let listeners = s.listeners.map { l in
            "{\"name\":\(str(l.name)),\"kind\":\(str(l.kind.rawValue)),\"address\":\(str(l.address)),"
                + "\"mode\":\(str(l.mode)),\"sessions\":\(l.sessions),\"ended\":\(l.counts.ended),"
                + "\"refused\":\(l.counts.refused),\"transactions\":\(l.counts.transactions),"
                + "\"bytes_in\":\(l.counts.bytesIn),\"bytes_out\":\(l.counts.bytesOut)}"
        }
        let counters = s.counters.map { "\(str($0.name)):\(ControlReply.number($0.value))" }
        let sessions = s.sessions.map { x in
            "{\"id\":\(str(x.id)),\"listener\":\(str(x.listener)),\"kind\":\(str(x.kind.rawValue)),\"state\":\(str(x.state)),"
                + "\"age\":\(LogFormat.formatSeconds(x.age)),\"client\":\(str(x.client)),\"destination\":\(str(x.destination)),"
                + "\"transactions\":\(x.transactions),\"bytes_in\":\(x.bytesIn),\"bytes_out\":\(x.bytesOut),"
                + "\"ident\":\(str(x.ident)),\"helo\":\(str(x.helo))}"
        }
        return "{\"version\":\(str(s.version)),\"pid\":\(s.pid),\"started\":\(ControlReply.number(s.started)),"
            + "\"uptime\":\(ControlReply.number(s.uptime)),\"config\":\(str(s.configFile)),"
            + "\"locks\":\(num(s.locks)),\"tracked_clients\":\(num(s.trackedClients)),"
            + "\"counters\":{\(counters.joined(separator: ","))},"
            + "\"listeners\":[\(listeners.joined(separator: ","))],"
            + "\"sessions\":[\(sessions.joined(separator: ","))],\"sessions_omitted\":\(s.sessionsOmitted)}"
    }

    /// `1d 02:03:04`, `02:03:04` or `4.2s`.
    public static func duration(_ seconds: Double) -> String {
        guard seconds.isFinite, seconds >= 0 else { return "-" }
        if seconds < 60 { return String(Double(Int(seconds * 10)) / 10) + "s" }
        let t = Int(min(seconds, 1e12))
        let (d, h, m, sec) = (t / 86400, t % 86400 / 3600, t % 3600 / 60, t % 60)
        let hms = [h, m, sec].map { $0 < 10 ? "0\($0)" : "\($0)" }.joined(separator: ":")
        return d > 0 ? "\(d)d \(hms)" : hms
    }

    static let cellMax = 40

    /// Escaped as in the log (unless it already is), so a table cell is one printable word; long ones
    /// end in `...`.
    static func cell(_ v: String?, escaped: Bool = false) -> String {
        guard let v, !v.isEmpty else { return "-" }
        let e = Array(LogEscape.word(escaped ? v : LogEscape.escape(v)).utf8)
        guard e.count > cellMax else { return String(decoding: e, as: UTF8.self) }
        var cut = e.prefix(cellMax - 3)
        // Every backslash the escaping writes starts a \xHH: never cut one in half.
        if let slash = cut.lastIndex(of: UInt8(ascii: "\\")), cut.endIndex - slash < 4 { cut = cut[..<slash] }
        return String(decoding: cut, as: UTF8.self) + "..."
    }

    static func table(_ header: [String], _ rows: [[String]]) -> String {
        var widths = header.map(\.count)
        for r in rows { for (i, c) in r.enumerated() { widths[i] = max(widths[i], c.count) } }
        func line(_ r: [String]) -> String {
            r.enumerated().map { i, c in i == r.count - 1 ? c : c + String(repeating: " ", count: widths[i] - c.count) }
                .joined(separator: "  ") + "\n"
        }
        return ([header] + rows).map(line).joined()
    }
}
