#if canImport(Glibc)
import Glibc
#endif

/// Address literal <-> bytes without the C string pitfalls (an embedded NUL ends a C string early).
public enum AddressBytes {
    /// 4 or 16 bytes, or nil. Accepts `[v6]` in brackets. Only address characters are allowed through
    /// to inet_pton, so `"10.0.0.1\0junk"` or an overlong string is refused, not truncated.
    public static func parse(_ literal: String) -> [UInt8]? {
        var raw = Substring(literal)
        if raw.hasPrefix("["), raw.hasSuffix("]"), raw.count >= 2 {
            raw = raw.dropFirst().dropLast()
            guard raw.contains(":") else { return nil }  // brackets are for IPv6 only
        }
        guard !raw.isEmpty, raw.utf8.count <= 45,
              raw.utf8.allSatisfy({ isHex($0) || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: ":") })
        else { return nil }
        let text = String(raw)
        if !text.contains(":") {
            var a = in_addr()
            guard inet_pton(AF_INET, text, &a) == 1 else { return nil }
            return withUnsafeBytes(of: &a) { Array($0) }
        }
        var a6 = in6_addr()
        guard inet_pton(AF_INET6, text, &a6) == 1 else { return nil }
        return withUnsafeBytes(of: &a6) { Array($0) }
    }

    /// Canonical text (`inet_ntop`); IPv6 with a port in brackets.
    public static func format(_ bytes: [UInt8]) -> String {
        if bytes.count == 4 { return dotted(bytes[0], bytes[1], bytes[2], bytes[3]) }
        var buf = [CChar](repeating: 0, count: 64)
        let family = bytes.count == 4 ? AF_INET : AF_INET6
        guard bytes.count == 4 || bytes.count == 16 else { return "?" }
        let ok = bytes.withUnsafeBytes { src in
            inet_ntop(family, src.baseAddress, &buf, socklen_t(buf.count)) != nil
        }
        guard ok else { return "?" }
        return String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// An IPv4 address in dotted-quad form, formatted here: inet_ntop costs some 1,700 instructions, and a
    /// session formats its addresses many times. At most 15 bytes, a small string that allocates nothing.
    public static func dotted(_ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8) -> String {
        String(unsafeUninitializedCapacity: 15) { out in
            var n = 0
            func put(_ octet: UInt8) {
                if octet >= 100 { out[n] = UInt8(ascii: "0") + octet / 100; n += 1 }
                if octet >= 10 { out[n] = UInt8(ascii: "0") + octet / 10 % 10; n += 1 }
                out[n] = UInt8(ascii: "0") + octet % 10
                n += 1
            }
            func dot() {
                out[n] = UInt8(ascii: ".")
                n += 1
            }
            put(a)
            dot()
            put(b)
            dot()
            put(c)
            dot()
            put(d)
            return n
        }
    }

    public static func format(_ bytes: [UInt8], port: UInt16) -> String {
        bytes.count == 16 ? "[\(format(bytes))]:\(port)" : "\(format(bytes)):\(port)"
    }

    /// `::ffff:a.b.c.d` → the 4 IPv4 bytes; anything else unchanged. A dual-stack socket reports IPv4
    /// peers this way, and the allow list and the lookup must see them as IPv4.
    public static func unmapped(_ bytes: [UInt8]) -> [UInt8] {
        guard bytes.count == 16, bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xff, bytes[11] == 0xff
        else { return bytes }
        return Array(bytes[12..<16])
    }

    @inline(__always)
    static func isHex(_ c: UInt8) -> Bool {
        (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66)
    }
}
