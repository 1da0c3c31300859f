/// The PROXY protocol version 2 header (binary form) that tells the fixed server who the client really
/// was, sent before any SMTP byte. Layout from the HAProxy PROXY protocol specification.
public enum ProxyProtocolV2 {
    static let signature: [UInt8] = [0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]

    /// `PROXY` command, TCP over the addresses' family. Both addresses must share a family; an IPv4 client
    /// seen through an IPv6 socket should be given as IPv4.
    public static func header(source: IPAddress, sourcePort: Int, destination: IPAddress, destinationPort: Int) -> [UInt8]? {
        guard source.family == destination.family else { return nil }
        var out = signature
        out.append(0x21)
        out.append(source.family == .v4 ? 0x11 : 0x21)
        let length = source.family == .v4 ? 12 : 36
        out += [UInt8(length >> 8), UInt8(length & 0xff)]
        out += source.bytes
        out += destination.bytes
        out += [UInt8(sourcePort >> 8), UInt8(sourcePort & 0xff), UInt8(destinationPort >> 8), UInt8(destinationPort & 0xff)]
        return out
    }
}
