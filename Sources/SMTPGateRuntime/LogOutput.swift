#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import Logging
import NIOConcurrencyHelpers
import SMTPGateCore

/// Where log lines go: stderr or an append-only file. `emit` renders a line into a bounded `LogQueue` and
/// returns; a writer on its own serial queue writes what is queued at most `flushInterval` later (at once
/// past `wakeBytes`). The writer may block in write(2) on a stalled reader (a full pipe); only it waits
/// then, never an event loop: the queue fills and lines are dropped and counted, and a `log_dropped` line
/// takes their place once the reader is back.
public final class LogSink: @unchecked Sendable {
    static let flushBytes = 64 * 1024
    static let flushInterval = 0.05
    /// How long `flush` (at exit) and `reopen` wait for a writer blocked by a stalled reader.
    static let stallTimeout = 2.0
    /// Some 20,000 lines of 200 bytes: several seconds of a busy proxy's log.
    public static let defaultQueueBytes = 4 * 1024 * 1024
    public static let queueBytesRange = 64 * 1024 ... 1024 * 1024 * 1024

    private let path: String?
    private let format: LogFormat
    /// Set for `run --syslog`: one datagram per line to this socket.
    private let syslog: (path: String, format: SyslogFormat, facility: SyslogFormat.Facility)?
    private let hostname: String
    /// `log_level`: lines less severe (a higher syslog rank) are not queued.
    private let maxRank: Int
    private let program: String
    private let pid = getpid()
    private let lock = NIOLock()
    private var queue: LogQueue
    /// `flushBytes`, or less for a small queue, so that the writer is woken before it is full.
    private let wakeBytes: Int
    private var clock = TimestampClock()
    private var wakeQueued = false
    private var _droppedTotal = 0
    private let writer = DispatchQueue(label: "smtpgate.log")
    private let ticker: DispatchSourceTimer
    /// Used on `writer` only.
    private var fd: Int32
    /// A failed write stopped inside a line: the next write ends that fragment first.
    private var midLine = false

    /// `program` names the daemon in text lines (`smtpgate[pid]:`, `smtpgate-helper[pid]:`); `queueBytes`
    /// bounds the lines waiting for the writer (the batch it is writing holds at most as much again).
    public convenience init(format: LogFormat, path: String?, program: String, queueBytes: Int, maxRank: Int = 7) throws {
        try self.init(format: format, path: path, syslog: nil, program: program, queueBytes: queueBytes, maxRank: maxRank)
    }

    /// Lines as syslog datagrams to `socket` (normally /dev/log), connected now: a socket nobody reads
    /// fails the start rather than losing every line.
    public convenience init(syslog socket: String, format: SyslogFormat, facility: SyslogFormat.Facility, program: String,
                            queueBytes: Int, maxRank: Int = 7) throws {
        try self.init(format: .text, path: nil, syslog: (socket, format, facility), program: program, queueBytes: queueBytes,
                      maxRank: maxRank)
    }

    private init(format: LogFormat, path: String?, syslog: (path: String, format: SyslogFormat, facility: SyslogFormat.Facility)?,
                 program: String, queueBytes: Int, maxRank: Int) throws {
        self.format = format
        self.syslog = syslog
        self.maxRank = maxRank
        self.program = program
        self.path = path
        self.queue = LogQueue(capacity: queueBytes)
        self.wakeBytes = min(Self.flushBytes, queueBytes / 2)
        var name = [CChar](repeating: 0, count: 256)
        hostname = gethostname(&name, name.count - 1) == 0 ? String(cString: name) : "-"
        if let syslog {
            fd = try Self.connectSyslog(syslog.path)
        } else {
            fd = try path.map(Self.openLog) ?? STDERR_FILENO
        }
        // A reader that exits must cost lines (EPIPE, counted), not the process; the daemons ignore SIGPIPE
        // too, but only once they are up, after their first lines.
        signal(SIGPIPE, SIG_IGN)
        ticker = DispatchSource.makeTimerSource(queue: writer)
        ticker.schedule(deadline: .now() + Self.flushInterval, repeating: Self.flushInterval)
        ticker.setEventHandler { [weak self] in self?.drain() }
        ticker.resume()
    }

    private static func connectSyslog(_ path: String) throws -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw DaemonError("cannot make a syslog socket: \(errnoText())") }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else {
            close(fd)
            throw DaemonError("syslog socket path \(path) is too long")
        }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            for (i, b) in bytes.enumerated() { raw[i] = b }
        }
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard rc == 0 else {
            let why = errnoText()
            close(fd)
            throw DaemonError("cannot connect to the syslog socket \(path): \(why)")
        }
        return fd
    }

    private static func openLog(_ path: String) throws -> Int32 {
        let fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o640)
        guard fd >= 0 else { throw DaemonError("cannot open log file \(path): \(errnoText())") }
        return fd
    }

    /// After log rotation (SIGHUP): the file is opened again by name; what was queued before goes to the
    /// old one (and, if the writer is stuck past `stallTimeout`, what comes until it is free). On failure
    /// the old one stays.
    public func reopen() throws {
        let new: Int32
        if let syslog {
            new = try Self.connectSyslog(syslog.path)
        } else {
            guard let path else { return }
            new = try Self.openLog(path)
        }
        onWriter { [self] in
            drain()
            close(fd)
            fd = new
            midLine = false
        }
    }

    /// Under `lock` (the clock is shared).
    private func render(_ record: LogRecord, into out: inout [UInt8]) {
        guard let syslog else {
            clock.tick()
            return format.render(record, timestamp: clock.stamp, program: program, pid: pid, into: &out)
        }
        var tv = timeval()
        gettimeofday(&tv, nil)
        syslog.format.render(record, facility: syslog.facility, tag: record.tag ?? program, pid: pid, hostname: hostname,
                             time: Double(tv.tv_sec) + Double(tv.tv_usec) / 1e6, into: &out)
    }

    public func emit(_ record: LogRecord) {
        guard record.level.rank <= maxRank else { return }
        let wake = lock.withLock { () -> Bool in
            queue.append { render(record, into: &$0) }
            guard queue.byteCount >= wakeBytes, !wakeQueued else { return false }
            wakeQueued = true
            return true
        }
        if wake { writer.async { [self] in drain() } }
    }

    /// Writes what is queued (at exit). A stalled reader gets `stallTimeout`; what it has not taken by
    /// then is lost with the process.
    public func flush() {
        onWriter { [self] in drain() }
    }

    /// Runs `work` on the writer and waits for it, at most `stallTimeout`: the writer may be blocked.
    private func onWriter(_ work: @escaping () -> Void) {
        let done = DispatchSemaphore(value: 0)
        writer.async {
            work()
            done.signal()
        }
        _ = done.wait(timeout: .now() + Self.stallTimeout)
    }

    /// Writes batches until nothing is left. After a failed write it stops until the next tick, so a reader
    /// that is gone costs one write per tick, not a spin.
    private func drain() {
        while true {
            let next = lock.withLock { () -> (LogQueue.Batch, [UInt8])? in
                wakeQueued = false
                guard !queue.isIdle else { return nil }
                let batch = queue.take()
                guard batch.dropped > 0 else { return (batch, []) }
                var line: [UInt8] = []
                render(LogQueue.logDropped(count: batch.dropped), into: &line)
                line.append(0x0a)
                return (batch, line)
            }
            guard let (batch, notice) = next else { return }
            let end: [UInt8] = midLine ? [0x0a] : []
            var written = 0
            for (i, part) in [end, notice, batch.lines].enumerated() {
                let n = syslog == nil ? writeAll(part) : sendLines(part)
                written += n
                if n > 0 { midLine = part[n - 1] != 0x0a }
                // Counted once its log_dropped line is out, whatever happens to the lines after it.
                if i == 1, n == part.count, batch.dropped > 0 { lock.withLock { _droppedTotal += batch.dropped } }
                guard n == part.count else {
                    let lost = batch.lost(notice: notice.count, written: max(0, written - end.count))
                    lock.withLock { queue.lose(lost) }
                    return
                }
            }
        }
    }

    /// Lines dropped so far, counted when their `log_dropped` line is written (the metrics' count): while
    /// the output is stuck the count waits with the line.
    public var droppedTotal: Int { lock.withLock { _droppedTotal } }

    /// Each line of `bytes` as one datagram, without its line end. A syslog daemon that restarted has a
    /// new socket: it is connected again once per failure. Returns the bytes whose lines got out.
    private func sendLines(_ bytes: [UInt8]) -> Int {
        var done = 0
        while done < bytes.count {
            let end = bytes[done...].firstIndex(of: 0x0a) ?? bytes.count
            var sent = bytes[done..<end].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) } >= 0
            if !sent, errno == ECONNREFUSED || errno == ENOTCONN || errno == ENOENT, let syslog,
               let fresh = try? Self.connectSyslog(syslog.path) {
                close(fd)
                fd = fresh
                sent = bytes[done..<end].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) } >= 0
            }
            guard sent else { return done }
            done = min(end + 1, bytes.count)
        }
        return done
    }

    /// Bytes of `bytes` written before an error (all of them unless one occurred).
    private func writeAll(_ bytes: [UInt8]) -> Int {
        bytes.withUnsafeBytes { buf in
            var off = 0
            while off < buf.count {
                let n = write(fd, buf.baseAddress! + off, buf.count - off)
                if n > 0 {
                    off += n
                } else if n < 0, errno == EINTR {
                    continue
                } else if n < 0, errno == EAGAIN || errno == EWOULDBLOCK {
                    // An inherited non-blocking stderr: wait as a blocking write would, a tick at a time.
                    var p = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                    _ = poll(&p, 1, Int32(Self.flushInterval * 1000))
                } else {
                    return off
                }
            }
            return off
        }
    }
}

/// UTC timestamps with milliseconds, `2026-12-04T21:30:00.123Z`, kept as bytes; the date and time of day
/// are formatted once per second.
struct TimestampClock {
    private var second: Int = -1
    private(set) var stamp = [UInt8](repeating: UInt8(ascii: "0"), count: 24)

    /// Sets `stamp` to now.
    mutating func tick() {
        var tv = timeval()
        gettimeofday(&tv, nil)
        if tv.tv_sec != second {
            second = tv.tv_sec
            var t = time_t(tv.tv_sec)
            var tm = tm()
            gmtime_r(&t, &tm)
            put(Int(tm.tm_year) + 1900, at: 0, digits: 4)
            stamp[4] = UInt8(ascii: "-")
            put(Int(tm.tm_mon) + 1, at: 5, digits: 2)
            stamp[7] = UInt8(ascii: "-")
            put(Int(tm.tm_mday), at: 8, digits: 2)
            stamp[10] = UInt8(ascii: "T")
            put(Int(tm.tm_hour), at: 11, digits: 2)
            stamp[13] = UInt8(ascii: ":")
            put(Int(tm.tm_min), at: 14, digits: 2)
            stamp[16] = UInt8(ascii: ":")
            put(Int(tm.tm_sec), at: 17, digits: 2)
            stamp[19] = UInt8(ascii: ".")
            stamp[23] = UInt8(ascii: "Z")
        }
        put(Int(tv.tv_usec / 1000), at: 20, digits: 3)
    }

    /// `value` in `digits` decimal digits (zero-padded; a year past 9999 keeps its last four).
    private mutating func put(_ value: Int, at offset: Int, digits: Int) {
        var v = value
        for i in stride(from: offset + digits - 1, through: offset, by: -1) {
            stamp[i] = UInt8(ascii: "0") + UInt8(v % 10)
            v /= 10
        }
    }
}

/// A swift-log handler writing through a `LogSink` (messages of libraries and of the daemon's own start-up):
/// each message becomes an event named by the message with its metadata as fields.
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
        let merged = metadata.merging(event.metadata ?? [:]) { $1 }
        let fields = merged.keys.sorted().map { key -> (String, LogRecord.Value) in
            (key, .text(LogEscape.escape(merged[key]!.description)))
        }
        // The event is the line's one bare word: a message with blanks (from a library) keeps them as \x20.
        sink.emit(LogRecord(Self.level(event.level), LogEscape.word(LogEscape.escape(event.message.description)), fields))
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

/// A daemon's event stream: each record goes straight to its log sink (not through swift-log, whose
/// metadata dictionary, boxing and cast back cost more per line than rendering it).
public struct EventLog: Sendable {
    private let emit: @Sendable (LogRecord) -> Void

    public init(sink: LogSink) {
        emit = { sink.emit($0) }
    }

    /// Records go to `emit` (tests).
    public init(_ emit: @escaping @Sendable (LogRecord) -> Void) {
        self.emit = emit
    }

    public func record(_ r: LogRecord) {
        emit(r)
    }
}

public struct DaemonError: Error, CustomStringConvertible {
    public let description: String
    public init(_ d: String) { description = d }
}
