/// One counter as the store keeps it and proxies of a pool exchange it. `key` is
/// `ClientKey.description`; a distinct-destinations counter carries only its counts.
public struct RateRecord: Sendable, Equatable {
    public let key: String
    public let kind: RateKind
    public let seconds: Int
    public let bucketStart: Double
    public let current: Double
    public let previous: Double

    public init(key: String, kind: RateKind, seconds: Int, bucketStart: Double, current: Double, previous: Double) {
        self.key = key
        self.kind = kind
        self.seconds = seconds
        self.bucketStart = bucketStart
        self.current = current
        self.previous = previous
    }
}
