/// Renders `LogRecord`s as plain text (`key=value`) or as one JSON object per line, straight into the bytes
/// the log writer queues: a busy proxy writes three lines a session, and building a `String` per field
/// cost more than the rest of the session's bookkeeping.
public enum LogFormat: String, Sendable, CaseIterable {
    case text
    case json

    /// One line, without its newline, appended to `out`. `timestamp` is printable ASCII (`TimestampClock`'s).
    public func render(_ record: LogRecord, timestamp: [UInt8], program: String = "smtpgate", pid: Int32,
                       into out: inout [UInt8]) {
        switch self {
        case .text:
            out.append(contentsOf: timestamp)
            out.append(0x20)
            out.append(contentsOf: (record.tag ?? program).utf8)
            out.append(UInt8(ascii: "["))
            LogFormat.appendDecimal(Int(pid), to: &out)
            out.append(contentsOf: "]: ".utf8)
            out.append(contentsOf: record.level.rawValue.utf8)
            out.append(0x20)
            LogFormat.appendTextBody(record, to: &out)
        case .json:
            LogFormat.appendJSON(record, timestamp: timestamp, to: &out)
        }
    }

    /// The same line as a `String` (tests).
    public func render(_ record: LogRecord, timestamp: String, program: String = "smtpgate", pid: Int32) -> String {
        var out: [UInt8] = []
        render(record, timestamp: Array(timestamp.utf8), program: program, pid: pid, into: &out)
        return String(decoding: out, as: UTF8.self)
    }

    static func textBody(_ record: LogRecord) -> String {
        var out: [UInt8] = []
        appendTextBody(record, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// `event key=value …`: the part of a text line after the level, also the body of a syslog datagram.
    static func appendTextBody(_ record: LogRecord, to out: inout [UInt8]) {
        out.append(contentsOf: record.event.utf8)
        for (key, value) in record.fields {
            switch value {
            case .text(let s):
                appendKey(key, to: &out)
                appendText(s, to: &out)
            case .int(let n):
                appendKey(key, to: &out)
                appendDecimal(n, to: &out)
            case .seconds(let d):
                appendKey(key, to: &out)
                appendSeconds(d, to: &out)
            case .recipients(let list):
                for r in list {
                    appendKey(key, to: &out)
                    appendText(r.address, to: &out, code: .some(r.code))
                }
            }
        }
    }

    @inline(__always)
    private static func appendKey(_ key: String, to out: inout [UInt8]) {
        out.append(0x20)
        out.append(contentsOf: key.utf8)
        out.append(UInt8(ascii: "="))
    }

    /// logfmt: a value is written bare unless it is empty or holds a space, `"` or `=`; then it is quoted and
    /// its quotes are `\"`. Controls were escaped where the text came in; any left are escaped here.
    /// `code` makes the value a recipient, `ADDR:CODE` (`-` for no code), judged as one value.
    static func appendText(_ s: String, to out: inout [UInt8], code: Int?? = nil) {
        var quote = s.isEmpty && code == nil, control = false, ascii = true
        func scan<S: Sequence<UInt8>>(_ bytes: S) {
            for b in bytes {
                switch b {
                case 0x20, 0x22, 0x3d: quote = true
                case 0..<0x20, 0x7f: control = true
                case 0x80...: ascii = false
                default: break
                }
            }
        }
        // Native strings are contiguous UTF-8: scanned through a pointer, not the view's per-byte index.
        if s.utf8.withContiguousStorageIfAvailable(scan) == nil { scan(s.utf8) }
        if control || (!ascii && s.unicodeScalars.contains(where: LogEscape.isInvisibleControl)) {
            // Escaping adds only `\xHH`: no blank, quote or `=`, so the quoting decided above stands.
            appendLogfmt(LogEscape.escapeControls(s).utf8, quote: quote, code: code, to: &out)
        } else {
            appendLogfmt(s.utf8, quote: quote, code: code, to: &out)
        }
    }

    private static func appendLogfmt(_ v: String.UTF8View, quote: Bool, code: Int??, to out: inout [UInt8]) {
        if quote {
            out.append(0x22)
            for b in v {
                if b == 0x22 { out.append(0x5c) }
                out.append(b)
            }
        } else {
            out.append(contentsOf: v)
        }
        if let code {
            out.append(UInt8(ascii: ":"))
            if let code { appendDecimal(code, to: &out) } else { out.append(UInt8(ascii: "-")) }
        }
        if quote { out.append(0x22) }
    }

    static func appendJSON(_ record: LogRecord, timestamp: [UInt8], to out: inout [UInt8]) {
        out.append(contentsOf: "{\"ts\":\"".utf8)
        out.append(contentsOf: timestamp)
        out.append(contentsOf: "\",\"level\":\"".utf8)
        out.append(contentsOf: record.level.rawValue.utf8)
        out.append(contentsOf: "\",\"event\":".utf8)
        appendJSONString(record.event, to: &out)
        if let tag = record.tag {
            out.append(contentsOf: ",\"tag\":".utf8)
            appendJSONString(tag, to: &out)
        }
        for (key, value) in record.fields {
            out.append(UInt8(ascii: ","))
            appendJSONString(key, to: &out)
            out.append(UInt8(ascii: ":"))
            switch value {
            case .text(let s): appendJSONText(s, to: &out)
            case .int(let n): appendDecimal(n, to: &out)
            case .seconds(let d): appendSeconds(d, to: &out)
            case .recipients(let list):
                out.append(UInt8(ascii: "["))
                for (i, r) in list.enumerated() {
                    if i > 0 { out.append(UInt8(ascii: ",")) }
                    out.append(contentsOf: "{\"to\":".utf8)
                    appendJSONText(r.address, to: &out)
                    out.append(contentsOf: ",\"code\":".utf8)
                    if let code = r.code { appendDecimal(code, to: &out) } else { out.append(contentsOf: "null".utf8) }
                    out.append(UInt8(ascii: "}"))
                }
                out.append(UInt8(ascii: "]"))
            }
        }
        out.append(UInt8(ascii: "}"))
    }

    public static func formatSeconds(_ d: Double) -> String {
        var out: [UInt8] = []
        appendSeconds(d, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// Seconds with three decimals, rounded to the millisecond.
    static func appendSeconds(_ d: Double, to out: inout [UInt8]) {
        let ms = Int((d * 1000).rounded())
        if ms < 0 { out.append(UInt8(ascii: "-")) }
        let m = ms.magnitude
        appendDecimal(m / 1000, to: &out)
        out.append(UInt8(ascii: "."))
        let frac = m % 1000
        out.append(UInt8(ascii: "0") + UInt8(frac / 100))
        out.append(UInt8(ascii: "0") + UInt8(frac / 10 % 10))
        out.append(UInt8(ascii: "0") + UInt8(frac % 10))
    }

    static func appendDecimal(_ n: Int, to out: inout [UInt8]) {
        if n < 0 { out.append(UInt8(ascii: "-")) }
        appendDecimal(n.magnitude, to: &out)
    }

    static func appendDecimal(_ n: UInt, to out: inout [UInt8]) {
        guard n >= 10 else {
            out.append(UInt8(ascii: "0") + UInt8(n))
            return
        }
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                     UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var count = 0
        var v = n
        withUnsafeMutableBytes(of: &digits) { d in
            while v > 0 {
                d[19 - count] = UInt8(ascii: "0") + UInt8(v % 10)
                v /= 10
                count += 1
            }
            out.append(contentsOf: d[(20 - count)...])
        }
    }

    public static func jsonString(_ s: String) -> String {
        var out: [UInt8] = []
        appendJSONString(s, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    static func appendJSONString(_ s: String, to out: inout [UInt8]) {
        out.append(0x22)
        for u in s.unicodeScalars { appendJSON(u, to: &out) }
        out.append(0x22)
    }

    /// A `.text` value in JSON: its `\xHH` escapes become the characters they stand for, with JSON's own
    /// escaping; only a byte that is not UTF-8 stays written as `\\xHH`.
    static func appendJSONText(_ s: String, to out: inout [UInt8]) {
        guard s.utf8.contains(UInt8(ascii: "\\")) else { return appendJSONString(s, to: &out) }
        let bytes = LogEscape.unescape(s)
        out.append(0x22)
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
                out.append(contentsOf: "\\\\x".utf8)
                out.append(LogEscape.hexDigit(b >> 4))
                out.append(LogEscape.hexDigit(b & 0x0f))
                i += 1
            }
        }
        out.append(0x22)
    }

    static func appendJSON(_ u: Unicode.Scalar, to out: inout [UInt8]) {
        switch u {
        case "\"": out.append(contentsOf: "\\\"".utf8)
        case "\\": out.append(contentsOf: "\\\\".utf8)
        case "\n": out.append(contentsOf: "\\n".utf8)
        case "\r": out.append(contentsOf: "\\r".utf8)
        case "\t": out.append(contentsOf: "\\t".utf8)
        default:
            if u.value < 0x20 || u.value == 0x7f || LogEscape.isInvisibleControl(u) {
                out.append(contentsOf: "\\u".utf8)
                for shift in stride(from: 12, through: 0, by: -4) {
                    out.append(LogEscape.hexDigit(UInt8((u.value >> UInt32(shift)) & 0x0f)))
                }
            } else if u.isASCII {
                out.append(UInt8(u.value))
            } else {
                UTF8.encode(u) { out.append($0) }
            }
        }
    }
}
