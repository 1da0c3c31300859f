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

    /// DNS rebinding: a hostile page in a browser on an allowed host can point a name of its own at
    /// 127.0.0.1, and the browser then reads the page as that site. Such a request names the attacker's
    /// host, so only an address literal (what a Prometheus target is), `localhost`, or no Host at all
    /// (HTTP/1.0) is answered.
    public static func isTrustedHost(_ values: [String]) -> Bool {
        guard let host = values.first else { return true }
        guard values.count == 1 else { return false }
        var name = Substring(host)
        if name.hasPrefix("[") {
            guard let close = name.firstIndex(of: "]") else { return false }
            let rest = name[name.index(after: close)...]
            guard rest.isEmpty || (rest.hasPrefix(":") && rest.dropFirst().allSatisfy(\.isASCII) && Int(rest.dropFirst()) != nil) else { return false }
            return IPAddress(String(name[name.index(after: name.startIndex)..<close])) != nil
        }
        if let colon = name.lastIndex(of: ":") {
            guard Int(name[name.index(after: colon)...]) != nil else { return false }
            name = name[..<colon]
        }
        return name.lowercased() == "localhost" || IPAddress(String(name)) != nil
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

    public static let notFound = text(404, "Not Found", "not found: the admin listener serves /, /status, /metrics and /healthz")
    public static let misdirected = text(421, "Misdirected Request", "use the admin listener's address, not a host name")
    public static let methodNotAllowed = text(405, "Method Not Allowed", "only GET and HEAD")
    public static let forbidden = text(403, "Forbidden", "not in admin_allow")
    public static let busy = text(503, "Service Unavailable", "too many admin connections")
    /// Prometheus's text exposition format.
    public static let metricsType = "text/plain; version=0.0.4; charset=utf-8"
}
