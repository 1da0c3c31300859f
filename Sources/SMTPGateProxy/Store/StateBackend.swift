/// What the write-through and the daemon's start need from a state store: the SQLite file
/// (`state_store sqlite:PATH`) or a PostgreSQL server (`state_store postgresql://…`). Used from one
/// thread at a time; the caller serialises. Every read is bounded, so a huge or hostile store cannot
/// take the process's memory.
public protocol StateBackend: AnyObject {
    /// Who this connection writes as; recorded on tombstones so the feed can say who removed a lock.
    var source: String { get }
    /// Every lock in force (not tombstones), oldest first, bounded.
    func locks() throws(StoreError) -> [StoredLock]
    /// Every counter row, bounded.
    func counters() throws(StoreError) -> [StoredCounter]
    /// The lock changes after `since`, in order, bounded; `mark` is what to pass next time.
    func lockChanges(since: Int64) throws(StoreError) -> (changes: [LockChange], mark: Int64)
    /// The newest lock version; a feed started here sees only what comes after.
    func currentMark() throws(StoreError) -> Int64
    /// The counter rows written after `since` by any writer, in order, bounded; `mark` is what to pass next time.
    func counterChanges(since: Int64) throws(StoreError) -> (counters: [StoredCounter], mark: Int64)
    /// The newest counter version.
    func currentCounterMark() throws(StoreError) -> Int64
    /// All of `changes` or none of them.
    func apply(_ changes: [StoreChange]) throws(StoreError)
    func close()
}
