/// Client-controlled text is made safe before it reaches a log line: anything that could split a line,
/// forge a field, or be taken for a format directive by a syslog relay is written as `\xHH`.
public enum LogEscape {
    public static func escape<C: Collection>(_ bytes: C) -> String where C.Element == UInt8 {
        var out = [UInt8]()
        out.reserveCapacity(bytes.count)
        for b in bytes {
            if needsEscape(b) {
                out.append(UInt8(ascii: "\\"))
                out.append(UInt8(ascii: "x"))
                out.append(hexDigit(b >> 4))
                out.append(hexDigit(b & 0x0f))
            } else {
                out.append(b)
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    public static func escape(_ text: String) -> String {
        escape(Array(text.utf8))
    }

    @inline(__always)
    static func needsEscape(_ b: UInt8) -> Bool {
        b < 0x21 || b > 0x7e || b == UInt8(ascii: "\\") || b == UInt8(ascii: "\"") || b == UInt8(ascii: "%")
    }

    @inline(__always)
    static func hexDigit(_ v: UInt8) -> UInt8 {
        v < 10 ? UInt8(ascii: "0") + v : UInt8(ascii: "a") + v - 10
    }
}
