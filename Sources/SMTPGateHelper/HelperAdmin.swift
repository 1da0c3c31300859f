import NIOCore
import NIOPosix
import SMTPGateCore
import SMTPGateRuntime

/// `--admin-listen`: the helper's `/metrics` and `/healthz` on the admin listener the proxy uses. The
/// helper has no status page: `/` is 404.
public final class HelperAdmin: Sendable {
    private let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    private let channel: Channel

    /// `endpoint` is ADDRESS:PORT with a literal address; `allow` defaults to loopback.
    public init(endpoint text: String, allow texts: [String], metrics: HelperMetrics) throws {
        guard let end = AdminEndpoint(text) else {
            throw HelperError("--admin-listen expects ADDRESS:PORT with a literal address ([::1]:9126 for IPv6), not '\(LogEscape.escape(text))'")
        }
        var allow: [CIDR] = []
        do {
            allow = try (texts.isEmpty ? ["127.0.0.0/8", "::1/128"] : texts).map { t throws(CIDR.ParseError) in try CIDR(parsing: t) }
        } catch {
            throw HelperError("--admin-allow: \(error)")
        }
        let fixed = allow
        do {
            channel = try AdminServer.bind(host: end.address.text, port: end.port, allow: { fixed }, group: group) { route, loop in
                switch route {
                case .metrics:
                    return loop.makeSucceededFuture(AdminResponse(status: 200, reason: "OK", contentType: AdminResponse.metricsType,
                                                                  body: metrics.registry.render()))
                case .health: return loop.makeSucceededFuture(.text(200, "OK", "ok"))
                case .methodNotAllowed: return loop.makeSucceededFuture(.methodNotAllowed)
                case .statusPage, .notFound: return loop.makeSucceededFuture(.notFound)
                }
            }
        } catch {
            try? group.syncShutdownGracefully()
            throw HelperError("--admin-listen \(end): cannot listen: \(error)")
        }
        self.address = end.description
    }

    public let address: String

    public func stop() {
        try? channel.close().wait()
        try? group.syncShutdownGracefully()
    }
}
