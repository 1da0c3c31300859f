/// One limit: at most `limit` in any `seconds`.
public struct RateWindow: Sendable, Hashable {
    public let limit: Int
    public let seconds: Int

    public init(limit: Int, seconds: Int) {
        self.limit = limit
        self.seconds = seconds
    }
}
