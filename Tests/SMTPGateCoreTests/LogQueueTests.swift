import Testing
@testable import SMTPGateCore

@Suite("Log queue: bounded, lines dropped whole and counted")
struct LogQueueTests {
    /// Appends `line` and reports whether it was queued.
    @discardableResult
    func add(_ q: inout LogQueue, _ line: String) -> Bool { q.append { $0.append(contentsOf: line.utf8) } }

    @Test func linesComeOutWholeAndInOrder() {
        var q = LogQueue(capacity: 100)
        #expect(q.isIdle)
        add(&q, "one")
        add(&q, "two")
        #expect(q.byteCount == 8)
        #expect(!q.isIdle)
        #expect(q.take() == LogQueue.Batch(dropped: 0, lines: b("one\ntwo\n")))
        #expect(q.isIdle)
        #expect(q.take() == LogQueue.Batch(dropped: 0, lines: []))
    }

    @Test func aFullQueueDropsWholeLinesUntilTheWriterTakesIt() {
        var q = LogQueue(capacity: 20)
        #expect(add(&q, "line-0001"))
        #expect(add(&q, "line-0002"))
        #expect(!add(&q, "line-0003"), "20 bytes hold two lines of 10")
        #expect(!add(&q, "x"), "a line that would fit is dropped too: the dropped lines are one run")
        // The drops came after the queued lines: they are reported before the lines that follow them.
        #expect(q.take() == LogQueue.Batch(dropped: 0, lines: b("line-0001\nline-0002\n")))
        #expect(!q.isIdle, "the drops still have to be reported")
        #expect(add(&q, "line-0005"))
        #expect(q.take() == LogQueue.Batch(dropped: 2, lines: b("line-0005\n")))
        #expect(q.isIdle)
    }

    @Test func dropsWithNothingAfterThemAreReportedAlone() {
        var q = LogQueue(capacity: 10)
        add(&q, "line-0001")
        add(&q, "line-0002")
        _ = q.take()
        #expect(q.take() == LogQueue.Batch(dropped: 1, lines: []))
        #expect(q.isIdle)
    }

    @Test func aLineLargerThanTheQueueIsDroppedEvenWhenItIsEmpty() {
        var q = LogQueue(capacity: 10)
        #expect(!add(&q, "0123456789"), "10 bytes and the newline")
        #expect(q.byteCount == 0)
        #expect(q.take() == LogQueue.Batch(dropped: 1, lines: []))
    }

    @Test func aDroppedLineIsNotRendered() {
        var q = LogQueue(capacity: 10)
        add(&q, "line-0001")
        add(&q, "line-0002")
        var rendered = 0
        for _ in 0..<1000 { q.append { rendered += 1; $0.append(UInt8(ascii: "x")) } }
        #expect(rendered == 0)
        _ = q.take()
        #expect(q.take().dropped == 1001)
    }

    @Test func linesAFailedWriteLostAreReportedBeforeTheNextLines() {
        var q = LogQueue(capacity: 100)
        add(&q, "a")
        let batch = q.take()
        add(&q, "b")
        q.lose(batch.lost(notice: 0, written: 0))
        #expect(q.take() == LogQueue.Batch(dropped: 1, lines: b("b\n")))
    }

    @Test func whatAStoppedWriteLost() {
        let batch = LogQueue.Batch(dropped: 5, lines: b("aaa\nbbb\nccc\n"))
        let notice = 20
        #expect(batch.lost(notice: notice, written: notice + 12) == 0)
        #expect(batch.lost(notice: notice, written: notice + 8) == 1, "stopped between lines")
        #expect(batch.lost(notice: notice, written: notice + 5) == 2, "a line written in part is lost")
        #expect(batch.lost(notice: notice, written: notice) == 3)
        #expect(batch.lost(notice: notice, written: 7) == 5 + 3, "the notice did not get out: its count too")
        #expect(LogQueue.Batch(dropped: 0, lines: b("aaa\n")).lost(notice: 0, written: 0) == 1)
    }

    /// Whatever the sizes, takes and failed writes: every line is either written or counted, exactly once.
    @Test func everyLineIsWrittenOrCounted() {
        var rng = SplitMix64(seed: 0x106)
        var q = LogQueue(capacity: 300)
        var appended = 0, written = 0, reported = 0
        for _ in 0..<20_000 {
            switch rng.next() % 10 {
            case 0...6:
                add(&q, String(repeating: "x", count: Int(rng.next() % 60)))
                appended += 1
            case 7, 8:
                let batch = q.take()
                reported += batch.dropped
                written += batch.lines.filter { $0 == 0x0a }.count
            default:
                // A write that stops somewhere in the notice or the lines.
                let batch = q.take()
                let notice = batch.dropped > 0 ? 25 : 0
                let total = notice + batch.lines.count
                let stop = total == 0 ? 0 : Int(rng.next() % UInt64(total))
                if stop >= notice {
                    reported += batch.dropped
                    written += batch.lines[..<(stop - notice)].filter { $0 == 0x0a }.count
                }
                q.lose(batch.lost(notice: notice, written: stop))
            }
        }
        while !q.isIdle {
            let batch = q.take()
            reported += batch.dropped
            written += batch.lines.filter { $0 == 0x0a }.count
        }
        #expect(written + reported == appended)
        #expect(reported > 0 && written > 0)
    }

    @Test func theLogDroppedLine() {
        let r = LogQueue.logDropped(count: 1753)
        #expect(LogFormat.text.render(r, timestamp: "2026-11-21T10:00:00.123Z", program: "smtpgate", pid: 77)
            == "2026-11-21T10:00:00.123Z smtpgate[77]: warning log_dropped count=1753")
        #expect(LogFormat.json.render(r, timestamp: "2026-11-21T10:00:00.123Z", pid: 77)
            == #"{"ts":"2026-11-21T10:00:00.123Z","level":"warning","event":"log_dropped","count":1753}"#)
    }
}
