/// The texts of replies the proxy writes itself. The enhanced status code is included only while the
/// client may expect it (before EHLO, or when the upstream advertised ENHANCEDSTATUSCODES).
public struct ProxyReplies: Sendable {
    public var proxyName: String
    public var enhanced = true

    public init(proxyName: String) {
        self.proxyName = proxyName
    }

    public func make(_ code: Int, _ enhancedCode: String, _ text: String) -> [UInt8] {
        let esc = enhanced ? " \(enhancedCode)" : ""
        return Array("\(code)\(esc) \(proxyName): \(text)\r\n".utf8)
    }

    public func tooManyConnections(limit: Int) -> [UInt8] {
        make(554, "5.7.0", "too many connections (max_connections \(limit))")
    }

    public func tooManyFromHost(limit: Int) -> [UInt8] {
        make(554, "5.7.0", "too many connections from your host (max_per_host \(limit))")
    }

    public func cannotConnect(destination: String, reason: String) -> [UInt8] {
        make(421, "4.4.1", "cannot connect to \(destination): \(reason)")
    }

    func destinationLost(_ why: String, transactionOpen: Bool) -> [UInt8] {
        transactionOpen ? make(451, "4.4.2", why) : make(421, "4.4.2", why)
    }

    var idleTimeout: [UInt8] { make(421, "4.4.2", "idle timeout") }
    var sessionTimeout: [UInt8] { make(421, "4.4.2", "session timeout") }
    var shuttingDown: [UInt8] { make(421, "4.3.2", "shutting down") }
    var pipelineOverflow: [UInt8] { make(503, "5.0.0", "pipeline overflow") }
    var startTLSForbidden: [UInt8] { make(502, "5.5.1", "STARTTLS not permitted") }
    var bdatUnsupported: [UInt8] { make(502, "5.5.1", "BDAT not supported") }
    var xexch50Unsupported: [UInt8] { make(502, "5.5.1", "XEXCH50 not supported") }
}
