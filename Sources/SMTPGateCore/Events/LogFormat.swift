/// Renders `LogRecord`s as plain text (`key=value`) or as one JSON object per line.
public enum LogFormat: String, Sendable, CaseIterable {
    case text
    case json

    public func render(_ record: LogRecord, timestamp: String, program: String = "smtpgate", pid: Int32) -> String {
        switch self {
        case .text:
            return "\(timestamp) \(record.tag ?? program)[\(pid)]: \(record.level.rawValue) \(LogFormat.textBody(record))"
        case .json:
            return LogFormat.json(record, timestamp: timestamp)
        }
    }

    static func textBody(_ record: LogRecord) -> String {
        var line = record.event
        for (key, value) in record.fields {
            switch value {
            case .text(let s):
                line += " \(key)=\(s.isEmpty ? "-" : s)"
            case .int(let n):
                line += " \(key)=\(n)"
            case .seconds(let d):
                line += " \(key)=\(formatSeconds(d))"
            case .recipients(let list):
                for r in list {
                    line += " \(key)=\(r.address):\(r.code.map(String.init) ?? "-")"
                }
            }
        }
        return line
    }

    static func json(_ record: LogRecord, timestamp: String) -> String {
        var out = "{\"ts\":\(jsonString(timestamp)),\"level\":\(jsonString(record.level.rawValue)),\"event\":\(jsonString(record.event))"
        if let tag = record.tag { out += ",\"tag\":\(jsonString(tag))" }
        for (key, value) in record.fields {
            out += ",\(jsonString(key)):"
            switch value {
            case .text(let s): out += jsonString(s)
            case .int(let n): out += String(n)
            case .seconds(let d): out += formatSeconds(d)
            case .recipients(let list):
                out += "["
                out += list.map { r in
                    "{\"to\":\(jsonString(r.address)),\"code\":\(r.code.map(String.init) ?? "null")}"
                }.joined(separator: ",")
                out += "]"
            }
        }
        return out + "}"
    }

    public static func formatSeconds(_ d: Double) -> String {
        let ms = Int((d * 1000).rounded())
        let frac = ms % 1000
        let pad = frac < 10 ? "00" : (frac < 100 ? "0" : "")
        return "\(ms / 1000).\(pad)\(frac)"
    }

    public static func jsonString(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if u.value < 0x20 || u.value == 0x7f {
                    let hex = String(u.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(u)
                }
            }
        }
        return out + "\""
    }
}
