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
                line += " \(key)="
                appendText(s, to: &line)
            case .int(let n):
                line += " \(key)=\(n)"
            case .seconds(let d):
                line += " \(key)=\(formatSeconds(d))"
            case .recipients(let list):
                for r in list {
                    line += " \(key)="
                    appendText("\(r.address):\(r.code.map(String.init) ?? "-")", to: &line)
                }
            }
        }
        return line
    }

    /// logfmt: a value is written bare unless it is empty or holds a space, `"` or `=`; then it is quoted and
    /// its quotes are `\"`. Controls were escaped where the text came in; any left are escaped here.
    static func appendText(_ s: String, to line: inout String) {
        var quote = s.isEmpty, control = false, ascii = true
        for b in s.utf8 {
            switch b {
            case 0x20, 0x22, 0x3d: quote = true
            case 0..<0x20, 0x7f: control = true
            case 0x80...: ascii = false
            default: break
            }
        }
        let v = control || (!ascii && s.unicodeScalars.contains(where: LogEscape.isInvisibleControl))
            ? LogEscape.escapeControls(s) : s
        guard quote else {
            line += v
            return
        }
        line += "\""
        if v.utf8.contains(0x22) {
            for u in v.unicodeScalars {
                if u == "\"" { line += "\\" }
                line.unicodeScalars.append(u)
            }
        } else {
            line += v
        }
        line += "\""
    }

    static func json(_ record: LogRecord, timestamp: String) -> String {
        var out = "{\"ts\":\(jsonString(timestamp)),\"level\":\(jsonString(record.level.rawValue)),\"event\":\(jsonString(record.event))"
        if let tag = record.tag { out += ",\"tag\":\(jsonString(tag))" }
        for (key, value) in record.fields {
            out += ",\(jsonString(key)):"
            switch value {
            case .text(let s): out += jsonText(s)
            case .int(let n): out += String(n)
            case .seconds(let d): out += formatSeconds(d)
            case .recipients(let list):
                out += "["
                out += list.map { r in
                    "{\"to\":\(jsonText(r.address)),\"code\":\(r.code.map(String.init) ?? "null")}"
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
        for u in s.unicodeScalars { appendJSON(u, to: &out) }
        return out + "\""
    }

    /// A `.text` value in JSON: its `\xHH` escapes become the characters they stand for, with JSON's own
    /// escaping; only a byte that is not UTF-8 stays written as `\\xHH`.
    static func jsonText(_ s: String) -> String {
        guard s.utf8.contains(UInt8(ascii: "\\")) else { return jsonString(s) }
        let bytes = LogEscape.unescape(s)
        var out = "\""
        var i = 0
        while i < bytes.count {
            let b = bytes[i]
            if b < 0x80 {
                appendJSON(Unicode.Scalar(b), to: &out)
                i += 1
            } else if let (u, n) = LogEscape.decodeScalar(bytes, at: i) {
                appendJSON(u, to: &out)
                i += n
            } else {
                out += "\\\\x"
                out.unicodeScalars.append(Unicode.Scalar(LogEscape.hexDigit(b >> 4)))
                out.unicodeScalars.append(Unicode.Scalar(LogEscape.hexDigit(b & 0x0f)))
                i += 1
            }
        }
        return out + "\""
    }

    static func appendJSON(_ u: Unicode.Scalar, to out: inout String) {
        switch u {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        default:
            if u.value < 0x20 || u.value == 0x7f || LogEscape.isInvisibleControl(u) {
                let hex = String(u.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            } else {
                out.unicodeScalars.append(u)
            }
        }
    }
}
