/// Names the proxy builds to ask: checked before they reach the resolver.
public enum DNSName {
    /// A name the resolver can ask: at most 253 characters, labels of 1 to 63 printable ASCII characters
    /// other than a dot, an optional final dot.
    public static func isValid(_ name: String) -> Bool {
        // One pass over the bytes (every DNSBL lookup and restriction asks): Substring.split cost some
        // 17,000 instructions for a 30-byte name.
        var n = name.utf8[...]
        if n.last == UInt8(ascii: ".") { n = n.dropLast() }
        guard !n.isEmpty, n.count <= 253 else { return false }
        var label = 0
        for b in n {
            if b == UInt8(ascii: ".") {
                guard label > 0 else { return false }
                label = 0
            } else {
                guard b > 0x20, b < 0x7f, label < 63 else { return false }
                label += 1
            }
        }
        return label > 0
    }

    /// The name a DNS blocklist is asked for an address under `zone` (RFC 5782 §2.1, §2.4): the IPv4
    /// octets reversed, or the 32 nibbles of an IPv6 address reversed. Nil for another length.
    public static func reversed(_ address: [UInt8], zone: String) -> String? {
        let a = AddressBytes.unmapped(address)
        let zone = zone.hasSuffix(".") ? String(zone.dropLast()) : zone
        switch a.count {
        case 4:
            return "\(a[3]).\(a[2]).\(a[1]).\(a[0]).\(zone)"
        case 16:
            let hex = Array("0123456789abcdef")
            var parts: [String] = []
            for b in a.reversed() {
                parts.append(String(hex[Int(b & 0xf)]))
                parts.append(String(hex[Int(b >> 4)]))
            }
            return parts.joined(separator: ".") + "." + zone
        default:
            return nil
        }
    }
}
