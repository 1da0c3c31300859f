/// The client's command verbs the proxy treats specially; everything else is `.other`.
public enum Verb: Sendable, Equatable {
    case helo, ehlo, mail, rcpt, data, bdat, rset, noop, quit, auth, starttls, xexch50, other

    static func parse<C: Collection>(_ bytes: C) -> Verb where C.Element == UInt8 {
        var word: UInt64 = 0
        var n = 0
        for b in bytes {
            if b == 0x20 || b == 0x0d || b == 0x0a || b == 0x09 { break }
            n += 1
            // Only letters and digits make a verb: a NUL must not vanish into the packed word.
            let isAlnum = (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) || (b >= 0x30 && b <= 0x39)
            if n > 8 || !isAlnum { return .other }
            let upper = (b >= 0x61 && b <= 0x7a) ? b - 0x20 : b
            word = (word << 8) | UInt64(upper)
        }
        switch word {
        case pack("HELO"): return .helo
        case pack("EHLO"): return .ehlo
        case pack("MAIL"): return .mail
        case pack("RCPT"): return .rcpt
        case pack("DATA"): return .data
        case pack("BDAT"): return .bdat
        case pack("RSET"): return .rset
        case pack("NOOP"): return .noop
        case pack("QUIT"): return .quit
        case pack("AUTH"): return .auth
        case pack("STARTTLS"): return .starttls
        case pack("XEXCH50"): return .xexch50
        default: return .other
        }
    }

    private static func pack(_ s: StaticString) -> UInt64 {
        var w: UInt64 = 0
        s.withUTF8Buffer { for b in $0 { w = (w << 8) | UInt64(b) } }
        return w
    }
}

/// Pieces of a command line the log and the state machine need.
enum CommandText {
    /// The line without its verb and without trailing CR/LF.
    static func argument(_ line: [UInt8]) -> ArraySlice<UInt8> {
        var end = line.count
        while end > 0, line[end - 1] == 0x0a || line[end - 1] == 0x0d { end -= 1 }
        var i = 0
        while i < end, line[i] != 0x20, line[i] != 0x09 { i += 1 }
        while i < end, line[i] == 0x20 || line[i] == 0x09 { i += 1 }
        return line[i..<end]
    }

    /// The path of `MAIL FROM:<x>` / `RCPT TO:<x>` (`prefix` is `FROM:` or `TO:`), without ESMTP parameters.
    static func path(_ line: [UInt8], prefix: String) -> ArraySlice<UInt8> {
        let arg = argument(line)
        let p = Array(prefix.utf8)
        var i = arg.startIndex
        var k = 0
        while k < p.count, i < arg.endIndex {
            let b = arg[i]
            let upper = (b >= 0x61 && b <= 0x7a) ? b - 0x20 : b
            guard upper == p[k] else { return arg }
            i += 1
            k += 1
        }
        while i < arg.endIndex, arg[i] == 0x20 { i += 1 }
        var end = i
        while end < arg.endIndex, arg[end] != 0x20 { end += 1 }
        return arg[i..<end]
    }

    /// The `SIZE=n` parameter of MAIL FROM (RFC 1870), if present and numeric.
    static func mailSize(_ line: [UInt8]) -> Int? {
        let arg = Array(argument(line))
        let key = Array(" SIZE=".utf8)
        var i = 0
        while i + key.count <= arg.count {
            var match = true
            for k in 0..<key.count {
                let b = arg[i + k]
                if ((b >= 0x61 && b <= 0x7a) ? b - 0x20 : b) != key[k] { match = false; break }
            }
            if match {
                var n = 0
                var digits = 0
                for b in arg[(i + key.count)...] {
                    guard b >= 0x30, b <= 0x39 else { break }
                    guard digits < 18 else { return Int.max }
                    n = n * 10 + Int(b - 0x30)
                    digits += 1
                }
                return digits > 0 ? n : nil
            }
            i += 1
        }
        return nil
    }

    /// BDAT's chunk size, which tells how many payload bytes follow the command line.
    static func bdatSize(_ line: [UInt8]) -> UInt64? {
        let arg = argument(line)
        var n: UInt64 = 0
        var digits = 0
        for b in arg {
            if b == 0x20 { break }
            guard b >= 0x30, b <= 0x39, digits < 19 else { return nil }
            n = n * 10 + UInt64(b - 0x30)
            digits += 1
        }
        return digits > 0 ? n : nil
    }
}
