/// One locked client: refused until `expires` (nil = until removed by hand).
public struct ClientLock: Sendable, Equatable {
    static let maxReasonBytes = 200

    public let key: ClientKey
    public let cause: LockCause
    /// Why, for the log and `smtpgate locks`: at most 200 bytes, control characters replaced by `?`,
    /// because it is built from client-influenced text such as a virus name or a DNSBL answer.
    public let reason: String
    public let created: Double
    public let expires: Double?

    public init(key: ClientKey, cause: LockCause, reason: String, created: Double, expires: Double?) {
        self.key = key
        self.cause = cause
        self.reason = Self.clean(reason)
        self.created = created
        self.expires = expires
    }

    public func isActive(now: Double) -> Bool {
        guard let expires else { return true }
        return now < expires
    }

    /// Seconds left (0 once expired), or nil for a lock that lasts until removed.
    public func remaining(now: Double) -> Double? {
        expires.map { max(0, $0 - now) }
    }

    static func clean(_ text: String) -> String {
        var out = String.UnicodeScalarView()
        var bytes = 0
        for scalar in text.unicodeScalars {
            let isControl = scalar.value < 0x20 || (scalar.value >= 0x7f && scalar.value < 0xa0)
            let s: Unicode.Scalar = isControl ? "?" : scalar
            bytes += UTF8.width(s)
            if bytes > maxReasonBytes { break }
            out.append(s)
        }
        return String(out)
    }
}
