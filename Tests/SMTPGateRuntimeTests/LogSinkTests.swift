#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import Foundation
import Synchronization
import Testing
import SMTPGateCore
import SMTPGateRuntime

/// A fresh directory under /tmp.
func makeTempDir() throws -> String {
    var template = Array("/tmp/smtpgate-logsink-XXXXXX".utf8CString)
    guard let made = mkdtemp(&template) else { throw POSIXError(.init(rawValue: errno)!) }
    return String(cString: made)
}

/// A FIFO in a fresh directory whose read end the test holds open but reads only when it wants to: a
/// `LogSink` opens it by name and writes into a pipe that stalls once its 64 KiB are full.
final class StalledPipe {
    let dir: String
    let path: String
    private var reader: Int32 = -1

    init() throws {
        dir = try makeTempDir()
        path = dir + "/log"
        guard mkfifo(path, 0o600) == 0 else { throw POSIXError(.init(rawValue: errno)!) }
        openReader()
    }

    deinit {
        closeReader()
        unlink(path)
        rmdir(dir)
    }

    func openReader() {
        reader = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
    }

    /// The pipe's reader is gone: writes fail with EPIPE.
    func closeReader() {
        if reader >= 0 { close(reader) }
        reader = -1
    }

    /// Reads until `finished` is signalled and the pipe then stays empty for 200 ms.
    func readAll(until finished: DispatchSemaphore) -> String {
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            var p = pollfd(fd: reader, events: Int16(POLLIN), revents: 0)
            if poll(&p, 1, 200) > 0, case let n = read(reader, &buf, buf.count), n > 0 {
                out += buf[..<n]
            } else if finished.wait(timeout: .now()) == .success {
                return String(decoding: out, as: UTF8.self)
            }
        }
    }
}

@Suite("Log sink: a stalled log reader costs lines, never a wait")
struct LogSinkTests {
    static let queueBytes = 64 * 1024

    func line(_ n: Int) -> LogRecord { LogRecord(.info, "line", [("n", .int(n))]) }

    func seconds(since start: DispatchTime) -> Double {
        Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
    }

    /// What follows `TIMESTAMP test[PID]: ` in each line; a line without its newline fails.
    func bodies(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) -> [String] {
        #expect(text.isEmpty || text.hasSuffix("\n"), "the last line is cut", sourceLocation: sourceLocation)
        return text.split(separator: "\n").map { l in
            let words = l.split(separator: " ", maxSplits: 2)
            #expect(words.count == 3 && words[1].hasPrefix("test["), "not a log line: \(l)", sourceLocation: sourceLocation)
            return words.count == 3 ? String(words[2]) : String(l)
        }
    }

    /// Flushes on another thread and reads the pipe meanwhile, so the writer can get everything out.
    func flushAndRead(_ sink: LogSink, _ pipe: StalledPipe) -> String {
        let flushed = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            sink.flush()
            flushed.signal()
        }
        return pipe.readAll(until: flushed)
    }

    @Test func emitNeverWaitsForAStalledReader() throws {
        let pipe = try StalledPipe()
        let sink = try LogSink(format: .text, path: pipe.path, program: "test", queueBytes: Self.queueBytes)
        let total = 100_000
        let emitted = DispatchSemaphore(value: 0)
        let took = Mutex(0.0)
        // A thread of its own: a Dispatch worker may start late when other tests block the pool.
        Thread {
            let start = DispatchTime.now()
            for n in 0..<total { sink.emit(line(n)) }
            took.withLock { $0 = seconds(since: start) }
            emitted.signal()
        }.start()
        try #require(emitted.wait(timeout: .now() + 10) == .success, "emit() waits for the stalled pipe")
        #expect(took.withLock { $0 } < 1, "\(total) lines while the writer is blocked")

        // Read now: the lines that were queued, in order, and one log_dropped line in place of each run of
        // dropped ones, counting exactly those.
        var next = 0
        var dropped = 0
        for body in bodies(flushAndRead(sink, pipe)) {
            if body.hasPrefix("warning log_dropped count="), let n = Int(body.dropFirst(26)) {
                try #require(n > 0)
                dropped += n
                next += n
            } else {
                try #require(body == "info line n=\(next)")
                next += 1
            }
        }
        #expect(next == total, "lines written and lines counted add up to every line emitted")
        #expect(dropped > total / 2, "the 64 KiB queue and the pipe hold a few thousand lines")
    }

    @Test func flushGivesUpOnAReaderThatNeverComesBack() throws {
        let pipe = try StalledPipe()
        let sink = try LogSink(format: .text, path: pipe.path, program: "test", queueBytes: Self.queueBytes)
        for n in 0..<10_000 { sink.emit(line(n)) }
        let start = DispatchTime.now()
        withExtendedLifetime(pipe) { sink.flush() }
        let waited = seconds(since: start)
        #expect(waited > 1 && waited < 4, "flush waited \(waited) s: about 2 s, then it gives up")
    }

    @Test func linesAGoneReaderMissedAreCountedForTheNextOne() throws {
        let pipe = try StalledPipe()
        let sink = try LogSink(format: .text, path: pipe.path, program: "test", queueBytes: Self.queueBytes)
        pipe.closeReader()
        for n in 0..<10 { sink.emit(line(n)) }
        let start = DispatchTime.now()
        sink.flush()
        #expect(seconds(since: start) < 0.5, "EPIPE is not waited for")

        pipe.openReader()
        sink.emit(line(10))
        #expect(bodies(flushAndRead(sink, pipe)) == ["warning log_dropped count=10", "info line n=10"])
    }

    @Test func reopenSendsLaterLinesToTheNewFile() throws {
        let dir = try makeTempDir()
        let path = dir + "/file.log"
        defer {
            unlink(path)
            unlink(path + ".1")
            rmdir(dir)
        }
        let sink = try LogSink(format: .text, path: path, program: "test", queueBytes: Self.queueBytes)
        sink.emit(line(1))
        #expect(rename(path, path + ".1") == 0)
        try sink.reopen()
        sink.emit(line(2))
        sink.flush()
        #expect(bodies(try String(contentsOfFile: path + ".1", encoding: .utf8)) == ["info line n=1"])
        #expect(bodies(try String(contentsOfFile: path, encoding: .utf8)) == ["info line n=2"])
    }
}
