/// What the admin listener serves for a request line: read-only pages, so only GET and HEAD.
public enum AdminRoute: Sendable, Equatable {
    case metrics
    case statusPage
    case health
    case notFound
    case methodNotAllowed

    /// The URI's query string is ignored (Prometheus may add one); the path must match exactly.
    public static func of(method: String, uri: String) -> AdminRoute {
        let path = uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
        let route: AdminRoute
        switch path {
        case "/metrics": route = .metrics
        case "/", "/status": route = .statusPage
        case "/healthz": route = .health
        default: return .notFound
        }
        return method == "GET" || method == "HEAD" ? route : .methodNotAllowed
    }
}

/// One answer of the admin listener.
public struct AdminResponse: Sendable, Equatable {
    public var status: Int
    public var reason: String
    public var contentType: String
    public var body: [UInt8]

    public init(status: Int, reason: String, contentType: String = "text/plain; charset=utf-8", body: [UInt8]) {
        self.status = status
        self.reason = reason
        self.contentType = contentType
        self.body = body
    }

    public static func text(_ status: Int, _ reason: String, _ text: String) -> AdminResponse {
        AdminResponse(status: status, reason: reason, body: Array((text + "\n").utf8))
    }

    public static let notFound = text(404, "Not Found", "not found: the admin listener serves /, /metrics and /healthz")
    public static let methodNotAllowed = text(405, "Method Not Allowed", "only GET and HEAD")
    public static let forbidden = text(403, "Forbidden", "not in admin_allow")
    public static let busy = text(503, "Service Unavailable", "too many admin connections")
    /// Prometheus's text exposition format.
    public static let metricsType = "text/plain; version=0.0.4; charset=utf-8"
}
