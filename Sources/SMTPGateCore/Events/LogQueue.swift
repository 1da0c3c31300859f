/// Rendered log lines waiting for the log writer, at most `capacity` bytes: the event loops must never
/// wait for a log reader, so when one stalls lines are dropped here instead, whole, and counted, the way
/// syslog daemons do. Once a line has been dropped every line is dropped until the writer takes the queue,
/// so the lost lines are one run and a single `log_dropped` line written in their place accounts for them.
/// Not synchronised: its owner holds it under a lock.
public struct LogQueue: Sendable {
    /// What the writer writes next: a `log_dropped` line for the `dropped` lines lost before `lines`
    /// (when there are any), then `lines`, each ending in a newline.
    public struct Batch: Sendable, Equatable {
        public var dropped: Int
        public var lines: [UInt8]

        /// The lines lost when a write of the rendered `log_dropped` line (`notice` bytes, 0 when nothing
        /// was dropped) followed by `lines` stopped after `written` bytes: every line not written whole, and
        /// the `dropped` ones once more if their notice did not get out whole.
        public func lost(notice: Int, written: Int) -> Int {
            guard written >= notice else { return dropped + newlines(in: lines[...]) }
            return newlines(in: lines[min(written - notice, lines.count)...])
        }

        private func newlines(in bytes: ArraySlice<UInt8>) -> Int {
            bytes.reduce(0) { $1 == 0x0a ? $0 + 1 : $0 }
        }
    }

    public let capacity: Int
    private var lines: [UInt8] = []
    private var dropping = false
    /// Lines dropped (or lost by a failed write) before the first of `lines`, not reported yet.
    private var droppedBefore = 0
    /// Lines dropped after the last of `lines`: they are reported before the lines queued after them.
    private var droppedAfter = 0

    public init(capacity: Int) {
        self.capacity = capacity
    }

    public var byteCount: Int { lines.count }

    /// Nothing to write and no drop to report.
    public var isIdle: Bool { lines.isEmpty && droppedBefore == 0 }

    /// Queues the line `render` appends to the queue's bytes (without its newline) or drops it. A dropped
    /// line is not rendered while the queue is dropping, so a full queue costs the event loop a counter
    /// increment; a line rendered past the capacity is taken back whole.
    @discardableResult
    public mutating func append(_ render: (inout [UInt8]) -> Void) -> Bool {
        if !dropping {
            let start = lines.count
            render(&lines)
            if lines.count + 1 <= capacity {
                lines.append(0x0a)
                return true
            }
            lines.removeSubrange(start...)
            dropping = true
        }
        if lines.isEmpty { droppedBefore += 1 } else { droppedAfter += 1 }
        return false
    }

    /// Everything queued, for one write; the queue accepts lines again.
    public mutating func take() -> Batch {
        let batch = Batch(dropped: droppedBefore, lines: lines)
        droppedBefore = droppedAfter
        droppedAfter = 0
        dropping = false
        lines = []
        return batch
    }

    /// Lines a taken batch did not get out (see `Batch.lost`): reported before the lines queued now.
    public mutating func lose(_ count: Int) {
        droppedBefore += count
    }

    /// The line that stands for `count` dropped lines.
    public static func logDropped(count: Int) -> LogRecord {
        LogRecord(.warning, "log_dropped", [("count", .int(count))])
    }
}
