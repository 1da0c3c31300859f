/// Decoders for the record data a resolver hands over (uncompressed, as RFC 1035 lays it out). Every
/// one is bounded by the bytes it is given and returns nil rather than guessing: the data comes from
/// whatever DNS server answered.
public enum DNSRdata {
    /// Names longer than this (RFC 1035's 255 octets on the wire) are refused.
    public static let maxNameBytes = 255
    /// TXT data kept per record: an SPF record is at most a few hundred bytes in practice.
    public static let maxTextBytes = 4096

    public static func decode(_ type: DNSType, _ data: [UInt8]) -> DNSRecord? {
        switch type {
        case .a: return data.count == 4 ? .address(data) : nil
        case .aaaa: return data.count == 16 ? .address(data) : nil
        case .txt: return text(data).map { .text($0) }
        case .mx:
            guard data.count >= 3, let (name, end) = name(data, from: 2), end == data.count else { return nil }
            return .mx(preference: UInt16(data[0]) << 8 | UInt16(data[1]), exchange: name)
        case .ptr:
            guard let (name, end) = name(data, from: 0), end == data.count else { return nil }
            return .ptr(name)
        }
    }

    /// One or more character-strings (a length byte and that many bytes), joined.
    static func text(_ data: [UInt8]) -> [UInt8]? {
        guard !data.isEmpty else { return nil }
        var out: [UInt8] = []
        var i = 0
        while i < data.count {
            let n = Int(data[i])
            guard i + 1 + n <= data.count else { return nil }
            out += data[(i + 1)..<(i + 1 + n)]
            guard out.count <= maxTextBytes else { return nil }
            i += 1 + n
        }
        return out
    }

    /// A name as labels (a length byte, then the label), ending with the empty label; written with dots
    /// and without the root's. Compression pointers, label types other than plain, and labels with bytes
    /// that are not printable ASCII (or are dots) are refused.
    static func name(_ data: [UInt8], from start: Int) -> (String, Int)? {
        var labels: [String] = []
        var i = start
        var total = 0
        while true {
            guard i < data.count else { return nil }
            let n = Int(data[i])
            if n == 0 { break }
            guard n <= 63, i + 1 + n <= data.count else { return nil }
            let label = data[(i + 1)..<(i + 1 + n)]
            guard label.allSatisfy({ $0 > 0x20 && $0 < 0x7f && $0 != UInt8(ascii: ".") }) else { return nil }
            total += n + 1
            guard total < maxNameBytes else { return nil }
            labels.append(String(decoding: label, as: UTF8.self))
            i += 1 + n
        }
        return (labels.isEmpty ? "." : labels.joined(separator: "."), i + 1)
    }
}
