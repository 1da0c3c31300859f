/// A snapshot of one sliding-window rate counter. Proxies sharing a store each keep their own row
/// (`source`), so one proxy's restart never overwrites another's contribution.
public struct StoredCounter: Sendable, Equatable {
    public var key: String
    public var kind: String
    public var seconds: Int
    public var bucketStart: Double
    public var current: Double
    public var previous: Double
    public var source: String

    public init(key: String, kind: String, seconds: Int, bucketStart: Double, current: Double, previous: Double, source: String) {
        self.key = key
        self.kind = kind
        self.seconds = seconds
        self.bucketStart = bucketStart
        self.current = current
        self.previous = previous
        self.source = source
    }
}
