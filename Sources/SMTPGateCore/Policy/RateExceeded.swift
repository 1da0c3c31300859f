/// A rate limit a client has reached: `count` (rounded down) against `window`.
public struct RateExceeded: Sendable, Equatable {
    public let kind: RateKind
    public let window: RateWindow
    public let count: Int

    public init(kind: RateKind, window: RateWindow, count: Int) {
        self.kind = kind
        self.window = window
        self.count = count
    }
}

