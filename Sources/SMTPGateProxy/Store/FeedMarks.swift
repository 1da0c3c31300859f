/// Where a reader of the store's two feeds (lock changes, counter rows) stands: the newest version of
/// each it has seen. Zero reads a feed from its beginning.
public struct FeedMarks: Sendable, Equatable {
    public var locks: Int64
    public var counters: Int64

    public init(locks: Int64, counters: Int64) {
        self.locks = locks
        self.counters = counters
    }

    public static let beginning = FeedMarks(locks: 0, counters: 0)

    /// The store's newest versions now.
    public static func current(of store: any StateBackend) throws(StoreError) -> FeedMarks {
        FeedMarks(locks: try store.currentMark(), counters: try store.currentCounterMark())
    }
}
