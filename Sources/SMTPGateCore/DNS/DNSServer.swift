/// A server of `dns_server`: `ADDRESS` or `ADDRESS@PORT` (libunbound's and unbound.conf's own form, which
/// an IPv6 address reads in without brackets).
public struct DNSServer: Sendable, Equatable, CustomStringConvertible {
    public let address: IPAddress
    public let port: Int

    public static let maxServers = 8

    public init(parsing word: Substring) throws(PolicyValueError) {
        let parts = word.split(separator: "@", maxSplits: 1, omittingEmptySubsequences: false)
        guard let address = IPAddress(String(parts[0])) else {
            throw PolicyValueError("dns_server \(CIDR.ParseError.show(String(word))) is not ADDRESS or ADDRESS@PORT (an IPv4 or IPv6 address)")
        }
        var port = 53
        if parts.count == 2 {
            guard parts[1].utf8.count <= 5, parts[1].utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let n = Int(parts[1]),
                  (1...65535).contains(n) else {
                throw PolicyValueError("dns_server \(CIDR.ParseError.show(String(word))): the port is not from 1 to 65535")
            }
            port = n
        }
        self.address = address
        self.port = port
    }

    /// Servers separated by commas and/or spaces; `none` (or nothing) reads /etc/resolv.conf.
    public static func parseList(_ v: String) throws(PolicyValueError) -> [DNSServer] {
        let words = Substring(v).split(whereSeparator: { $0 == "," || $0 == " " || $0 == "\t" })
        if words.isEmpty || (words.count == 1 && words[0].lowercased() == "none") { return [] }
        guard words.count <= maxServers else { throw PolicyValueError("dns_server lists \(words.count) servers; at most \(maxServers)") }
        var out: [DNSServer] = []
        for w in words { out.append(try DNSServer(parsing: w)) }
        return out
    }

    public var description: String { port == 53 ? address.text : "\(address.text)@\(port)" }
}
