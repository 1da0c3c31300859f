/// A client lock as the state store keeps it; the proxy maps its own policy types onto this.
public struct StoredLock: Sendable, Equatable {
    public var key: String
    public var cause: String
    public var reason: String
    public var created: Double
    /// nil: until removed.
    public var expires: Double?
    /// The proxy that wrote it, or "admin".
    public var source: String

    public init(key: String, cause: String, reason: String, created: Double, expires: Double?, source: String) {
        self.key = key
        self.cause = cause
        self.reason = reason
        self.created = created
        self.expires = expires
        self.source = source
    }
}
