/// The admin listener's HTML status page: the same facts as `smtpgate status`, for a browser. No script and
/// nothing loaded from elsewhere (the page refreshes itself with a meta tag), and every value goes through
/// `escape`, because HELO names, idents and addresses come from clients.
public enum StatusPage {
    /// The whole page, UTF-8 HTML5; the browser reloads it every `refresh` seconds.
    public static func html(_ s: DaemonStatus, refresh: Int = 5) -> String {
        let open = s.listeners.reduce(0) { $0 + $1.sessions }
        // 0 would have the browser reload without pause, a request loop against the daemon.
        let every = max(1, refresh)
        var out = """
        <!DOCTYPE html>
        <html lang="en"><head><meta charset="utf-8">
        <meta http-equiv="refresh" content="\(every)">
        <title>smtpgate on PID \(s.pid)</title>
        <style>
        body{font-family:sans-serif;margin:1.5em;color:#222}
        table{border-collapse:collapse;margin-bottom:1.5em;font-family:monospace}
        th,td{border:1px solid #bbb;padding:2px 8px;text-align:left;vertical-align:top}
        th{background:#eee} td.n{text-align:right} p.note{color:#555}
        </style></head><body>
        <h1>smtpgate \(escape(s.version))</h1>
        <p>pid \(s.pid), up \(escape(StatusReport.duration(s.uptime))), config \(escape(s.configFile)), \(open) open</p>

        """
        if let locks = s.locks {
            out += "<p>locks \(locks), rate-counted clients \(s.trackedClients ?? 0)</p>\n"
        } else {
            out += "<p>abuse control is off</p>\n"
        }
        out += "<h2>Listeners</h2>\n"
        out += table(["listener", "kind", "address", "mode", "sessions", "ended", "refused", "transactions", "bytes in",
                      "bytes out"], numeric: [4, 5, 6, 7, 8, 9], s.listeners.map {
            [$0.name, $0.kind.rawValue, $0.address, $0.mode, String($0.sessions), String($0.counts.ended),
             String($0.counts.refused), String($0.counts.transactions), String($0.counts.bytesIn), String($0.counts.bytesOut)]
        })
        out += "<h2>Sessions</h2>\n"
        out += table(["session", "listener", "kind", "state", "age", "client", "destination", "transactions", "bytes in",
                      "bytes out", "ident", "helo"], numeric: [7, 8, 9], s.sessions.map { x in
            [x.id, x.listener, x.kind.rawValue, x.state, StatusReport.duration(x.age), x.client, x.destination,
             String(x.transactions), String(x.bytesIn), String(x.bytesOut), x.ident ?? "-", x.helo ?? "-"]
        })
        if s.sessionsOmitted > 0 { out += "<p class=\"note\">\(s.sessionsOmitted) more sessions not listed</p>\n" }
        out += "<h2>Counters</h2>\n"
        out += table(["metric", "total"], numeric: [1], s.counters.map { [$0.name, number($0.value)] })
        return out + "</body></html>\n"
    }

    /// Text for element content and attribute values. Control bytes become U+FFFD: they have no business
    /// in a page, and some (NUL) are parse errors.
    public static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for u in text.unicodeScalars {
            switch u {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default:
                if u.value < 0x20 || (0x7f...0x9f).contains(u.value) { out += "\u{FFFD}" } else { out.unicodeScalars.append(u) }
            }
        }
        return out
    }

    /// Counters are whole numbers almost always; `17.0` would read as a fraction.
    private static func number(_ v: Double) -> String {
        v.isFinite && v == v.rounded() && abs(v) < 1e15 ? String(Int64(v)) : String(v)
    }

    private static func table(_ header: [String], numeric: Set<Int>, _ rows: [[String]]) -> String {
        var out = "<table><tr>" + header.map { "<th>\(escape($0))</th>" }.joined() + "</tr>\n"
        if rows.isEmpty { out += "<tr><td colspan=\"\(header.count)\">none</td></tr>\n" }
        for row in rows {
            out += "<tr>" + row.enumerated().map { i, v in
                numeric.contains(i) ? "<td class=\"n\">\(escape(v))</td>" : "<td>\(escape(v))</td>"
            }.joined() + "</tr>\n"
        }
        return out + "</table>\n"
    }
}
