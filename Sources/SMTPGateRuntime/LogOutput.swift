#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import Logging
import NIOConcurrencyHelpers
import SMTPGateCore

/// Where log lines go: stderr or an append-only file. Lines are collected in memory and written by a
/// flusher thread at most `flushInterval` later (or at once past `flushBytes`), so the event loops never
/// wait on a log write; `flush()` runs at shutdown.
public final class LogSink: @unchecked Sendable {
    static let flushBytes = 64 * 1024
    static let flushInterval = 0.05

    private var fd: Int32
    private let path: String?
    private let format: LogFormat
    private let program: String
    private let pid = getpid()
    private let lock = NIOLock()
    private var pending: [UInt8] = []
    private let writeLock = NIOLock()
    private var clock = TimestampClock()
    private let flusher = DispatchSource.makeTimerSource(queue: DispatchQueue(label: "smtpgate.log"))

    /// `program` names the daemon in text lines (`smtpgate[pid]:`, `smtpgate-helper[pid]:`).
    public init(format: LogFormat, path: String?, program: String) throws {
        self.format = format
        self.program = program
        self.path = path
        self.fd = try path.map(Self.openLog) ?? STDERR_FILENO
        pending.reserveCapacity(Self.flushBytes)
        flusher.schedule(deadline: .now() + Self.flushInterval, repeating: Self.flushInterval)
        flusher.setEventHandler { [weak self] in self?.flush() }
        flusher.resume()
    }

    private static func openLog(_ path: String) throws -> Int32 {
        let fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o640)
        guard fd >= 0 else { throw DaemonError("cannot open log file \(path): \(errnoText())") }
        return fd
    }

    /// After log rotation (SIGHUP): the file is opened again by name. On failure the old one stays.
    public func reopen() throws {
        guard let path else { return }
        let new = try Self.openLog(path)
        flush()
        let old = writeLock.withLock { () -> Int32 in
            let old = fd
            fd = new
            return old
        }
        close(old)
    }

    public func emit(_ record: LogRecord) {
        let full = lock.withLock { () -> Bool in
            let line = format.render(record, timestamp: clock.now(), program: program, pid: pid)
            pending.append(contentsOf: line.utf8)
            pending.append(0x0a)
            return pending.count >= Self.flushBytes
        }
        if full { flush() }
    }

    /// Writes what is collected. Lines stay whole and in order: one writer at a time.
    public func flush() {
        writeLock.withLock {
            let batch = lock.withLock { () -> [UInt8] in
                let b = pending
                pending.removeAll(keepingCapacity: true)
                return b
            }
            guard !batch.isEmpty else { return }
            batch.withUnsafeBytes { buf in
                var off = 0
                while off < buf.count {
                    let n = write(fd, buf.baseAddress! + off, buf.count - off)
                    if n <= 0 {
                        if n < 0, errno == EINTR { continue }
                        return
                    }
                    off += n
                }
            }
        }
    }
}

/// UTC timestamps with milliseconds; the date and time of day are formatted once per second.
struct TimestampClock {
    private var second: Int = -1
    private var prefix = ""

    mutating func now() -> String {
        var tv = timeval()
        gettimeofday(&tv, nil)
        if tv.tv_sec != second {
            second = tv.tv_sec
            var t = time_t(tv.tv_sec)
            var tm = tm()
            gmtime_r(&t, &tm)
            func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
            prefix = "\(tm.tm_year + 1900)-\(two(tm.tm_mon + 1))-\(two(tm.tm_mday))T\(two(tm.tm_hour)):\(two(tm.tm_min)):\(two(tm.tm_sec))."
        }
        let ms = Int(tv.tv_usec / 1000)
        return prefix + (ms < 10 ? "00\(ms)" : (ms < 100 ? "0\(ms)" : "\(ms)")) + "Z"
    }
}

/// A swift-log handler writing through a `LogSink`. Session records arrive whole in the `record`
/// metadata key; any other message becomes an event named by the message with its metadata as fields.
public struct SinkLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    public var logLevel: Logger.Level = .info
    private let sink: LogSink

    public init(sink: LogSink) {
        self.sink = sink
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        if case .stringConvertible(let r as LogRecord)? = event.metadata?[EventLog.recordKey] {
            sink.emit(r)
            return
        }
        let merged = metadata.merging(event.metadata ?? [:]) { $1 }
        let fields = merged.keys.sorted().map { key -> (String, LogRecord.Value) in
            (key, .text(LogEscape.escape(merged[key]!.description)))
        }
        sink.emit(LogRecord(Self.level(event.level), LogEscape.escape(event.message.description), fields))
    }

    static func level(_ l: Logger.Level) -> LogRecord.Level {
        switch l {
        case .trace, .debug: return .debug
        case .info: return .info
        case .notice: return .notice
        case .warning: return .warning
        case .error, .critical: return .error
        }
    }
}

/// A daemon's event stream into swift-log (session events for the proxy, drops and counters for the helper).
public struct EventLog: Sendable {
    static let recordKey = "smtpgate.record"
    public let logger: Logger

    public init(logger: Logger) {
        self.logger = logger
    }

    public func record(_ r: LogRecord) {
        logger.log(level: Self.level(r.level), "\(r.event)", metadata: [Self.recordKey: .stringConvertible(r)])
    }

    static func level(_ l: LogRecord.Level) -> Logger.Level {
        switch l {
        case .debug: return .debug
        case .info: return .info
        case .notice: return .notice
        case .warning: return .warning
        case .error: return .error
        }
    }
}

public struct DaemonError: Error, CustomStringConvertible {
    public let description: String
    public init(_ d: String) { description = d }
}
