/// Client-controlled text is made printable before it is kept or logged: whatever could split a line,
/// move a terminal's cursor or reorder what a reader sees is written as `\xHH`, one escape per byte; the
/// backslash itself is `\x5c`, so every backslash in escaped text starts an escape. Spaces, quotes and
/// well-formed UTF-8 stay as they are: the log renderers quote and escape those for their own format.
public enum LogEscape {
    public static func escape<C: Collection>(_ bytes: C) -> String where C.Element == UInt8 {
        escape(bytes, backslash: true)
    }

    public static func escape(_ text: String) -> String {
        escape(Array(text.utf8), backslash: true)
    }

    /// Escapes the controls of text that is already escaped (or not from a client), leaving its backslashes:
    /// what the renderers apply to every value, so that no value can split or forge a line.
    public static func escapeControls(_ text: String) -> String {
        escape(Array(text.utf8), backslash: false)
    }

    /// Escaped text as one printable ASCII word, its spaces, quotes and UTF-8 written as `\xHH` too: for
    /// places that split at blanks (the state file's tables, an event name).
    public static func word(_ escaped: String) -> String {
        var out = [UInt8]()
        out.reserveCapacity(escaped.utf8.count)
        for b in escaped.utf8 {
            if (0x21...0x7e).contains(b) { out.append(b) } else { appendEscape(b, to: &out) }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The bytes that escaped text stands for: each `\xHH` is the byte HH; any other character is itself.
    public static func unescape(_ text: String) -> [UInt8] {
        let s = Array(text.utf8)
        var out = [UInt8]()
        out.reserveCapacity(s.count)
        var i = 0
        while i < s.count {
            if s[i] == UInt8(ascii: "\\"), i + 3 < s.count, s[i + 1] == UInt8(ascii: "x"),
               let hi = hexValue(s[i + 2]), let lo = hexValue(s[i + 3]) {
                out.append(hi << 4 | lo)
                i += 4
            } else {
                out.append(s[i])
                i += 1
            }
        }
        return out
    }

    static func escape<C: Collection>(_ bytes: C, backslash: Bool) -> String where C.Element == UInt8 {
        let input = Array(bytes)
        var out = [UInt8]()
        out.reserveCapacity(input.count)
        var i = 0
        while i < input.count {
            let b = input[i]
            if b < 0x80 {
                if asciiNeedsEscape(b) && (backslash || b != UInt8(ascii: "\\")) {
                    appendEscape(b, to: &out)
                } else {
                    out.append(b)
                }
                i += 1
                continue
            }
            guard let (scalar, length) = decodeScalar(input, at: i) else {
                appendEscape(b, to: &out)
                i += 1
                continue
            }
            let hidden = isInvisibleControl(scalar)
            for k in i..<(i + length) {
                if hidden { appendEscape(input[k], to: &out) } else { out.append(input[k]) }
            }
            i += length
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// C0 controls, DEL and the backslash (so that `\xHH` stays unambiguous).
    @inline(__always)
    static func asciiNeedsEscape(_ b: UInt8) -> Bool {
        b < 0x20 || b == 0x7f || b == UInt8(ascii: "\\")
    }

    /// Scalars above ASCII that a reader cannot see but a terminal or viewer acts on: C1 controls, the
    /// Unicode line and paragraph separators, bidirectional overrides and isolates, and the byte-order mark.
    public static func isInvisibleControl(_ u: Unicode.Scalar) -> Bool {
        switch u.value {
        case 0x80...0x9f, 0x061c, 0x200e, 0x200f, 0x2028...0x202e, 0x2066...0x2069, 0xfeff: return true
        default: return false
        }
    }

    /// The well-formed UTF-8 sequence at `i` (RFC 3629: no overlong forms, no surrogates, at most U+10FFFF).
    static func decodeScalar(_ s: [UInt8], at i: Int) -> (Unicode.Scalar, Int)? {
        let lead = s[i]
        let length: Int
        var value: UInt32
        switch lead {
        case 0xc2...0xdf: length = 2; value = UInt32(lead & 0x1f)
        case 0xe0...0xef: length = 3; value = UInt32(lead & 0x0f)
        case 0xf0...0xf4: length = 4; value = UInt32(lead & 0x07)
        default: return nil
        }
        guard i + length <= s.count else { return nil }
        for k in 1..<length {
            let c = s[i + k]
            guard c & 0xc0 == 0x80 else { return nil }
            value = value << 6 | UInt32(c & 0x3f)
        }
        let minimum: UInt32 = length == 3 ? 0x800 : (length == 4 ? 0x10000 : 0x80)
        guard value >= minimum, let scalar = Unicode.Scalar(value) else { return nil }
        return (scalar, length)
    }

    @inline(__always)
    static func appendEscape(_ b: UInt8, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\\"))
        out.append(UInt8(ascii: "x"))
        out.append(hexDigit(b >> 4))
        out.append(hexDigit(b & 0x0f))
    }

    static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
        default: return nil
        }
    }

    @inline(__always)
    static func hexDigit(_ v: UInt8) -> UInt8 {
        v < 10 ? UInt8(ascii: "0") + v : UInt8(ascii: "a") + v - 10
    }
}
