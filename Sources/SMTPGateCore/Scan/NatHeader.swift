/// The header naming the real client, put first in each message (`nat_header`, `nat_header_type`, `abuse`).
/// Every part is either ours or validated printable ASCII, and each line ends in CRLF, so nothing a client
/// controls can start a header line of its own.
public enum NatHeader {
    public static func make(type: Config.NatHeaderType, name: String, client: String, clientPort: Int?,
                            ident: String?, proxyName: String, session: String, abuse: String?) -> [UInt8]? {
        switch type {
        case .none:
            return nil
        case .ipOnly:
            return Array("\(name): \(printable(client))\r\n".utf8)
        case .generic:
            let port = clientPort.map { ":\($0)" } ?? ""
            let identPart = ident.map { "[ident \(printable($0))]" } ?? "[ident-empty]"
            var text = "\(name): from [\(printable(client))]\(port) \(identPart)\r\n"
            text += "\tby \(printable(proxyName)) with SMTPGate id \(printable(session))\r\n"
            if let abuse { text += "\tabuse-to \(printable(abuse))\r\n" }
            return Array(text.utf8)
        }
    }

    /// Printable ASCII only, at most 200 bytes: anything else becomes '?'.
    static func printable(_ s: String) -> String {
        String(decoding: s.utf8.prefix(200).map { (0x20..<0x7f).contains($0) ? $0 : 0x3f }, as: UTF8.self)
    }
}
