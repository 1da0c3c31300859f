#if canImport(Glibc)
import Glibc
#endif

/// Log lines as syslog datagrams: RFC 3164 as glibc's syslog(3) sends them to /dev/log, or RFC 5424.
/// The priority carries `log_facility` and the line's level; the message is the text line's body.
public enum SyslogFormat: String, Sendable, CaseIterable {
    case rfc3164
    case rfc5424

    /// syslog(3)'s facilities by name, with their codes.
    public enum Facility: String, Sendable, CaseIterable {
        case kern, user, mail, daemon, auth, syslog, lpr, news, uucp, cron, authpriv, ftp
        case local0, local1, local2, local3, local4, local5, local6, local7

        public var code: Int {
            switch self {
            case .kern: return 0
            case .user: return 1
            case .mail: return 2
            case .daemon: return 3
            case .auth: return 4
            case .syslog: return 5
            case .lpr: return 6
            case .news: return 7
            case .uucp: return 8
            case .cron: return 9
            case .authpriv: return 10
            case .ftp: return 11
            case .local0: return 16
            case .local1: return 17
            case .local2: return 18
            case .local3: return 19
            case .local4: return 20
            case .local5: return 21
            case .local6: return 22
            case .local7: return 23
            }
        }
    }

    public static func severity(_ l: LogRecord.Level) -> Int {
        switch l {
        case .error: return 3
        case .warning: return 4
        case .notice: return 5
        case .info: return 6
        case .debug: return 7
        }
    }

    /// One datagram, without a line end, appended to `out`. `tag` is the program or the listener's
    /// `syslog_name`; `time` the Unix time (RFC 3164 writes it in local time, as syslog(3) does; RFC 5424 in
    /// UTC with milliseconds).
    public func render(_ record: LogRecord, facility: Facility, tag: String, pid: Int32, hostname: String,
                       time: Double, into out: inout [UInt8]) {
        out.append(UInt8(ascii: "<"))
        LogFormat.appendDecimal(facility.code * 8 + Self.severity(record.level), to: &out)
        out.append(UInt8(ascii: ">"))
        switch self {
        case .rfc3164:
            out.append(contentsOf: Self.stamp3164(time).utf8)
            out.append(0x20)
            out.append(contentsOf: tag.utf8)
            out.append(UInt8(ascii: "["))
            LogFormat.appendDecimal(Int(pid), to: &out)
            out.append(contentsOf: "]: ".utf8)
        case .rfc5424:
            out.append(contentsOf: "1 ".utf8)
            out.append(contentsOf: Self.stamp5424(time).utf8)
            out.append(0x20)
            out.append(contentsOf: (hostname.isEmpty ? "-" : hostname).utf8)
            out.append(0x20)
            out.append(contentsOf: tag.utf8)
            out.append(0x20)
            LogFormat.appendDecimal(Int(pid), to: &out)
            out.append(0x20)
            out.append(contentsOf: record.event.utf8)
            out.append(contentsOf: " - ".utf8)
        }
        out.append(contentsOf: record.level.rawValue.utf8)
        out.append(0x20)
        LogFormat.appendTextBody(record, to: &out)
    }

    /// The same datagram as a `String` (tests).
    public func render(_ record: LogRecord, facility: Facility, tag: String, pid: Int32, hostname: String,
                       time: Double) -> String {
        var out: [UInt8] = []
        render(record, facility: facility, tag: tag, pid: pid, hostname: hostname, time: time, into: &out)
        return String(decoding: out, as: UTF8.self)
    }

    static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    /// `Mmm dd hh:mm:ss`, the day padded with a space.
    static func stamp3164(_ time: Double) -> String {
        var t = time_t(time.rounded(.down))
        var tm = tm()
        localtime_r(&t, &tm)
        let day = tm.tm_mday < 10 ? " \(tm.tm_mday)" : "\(tm.tm_mday)"
        return "\(months[Int(tm.tm_mon)]) \(day) \(two(tm.tm_hour)):\(two(tm.tm_min)):\(two(tm.tm_sec))"
    }

    static func stamp5424(_ time: Double) -> String {
        var t = time_t(time.rounded(.down))
        var tm = tm()
        gmtime_r(&t, &tm)
        let ms = Int((time - time.rounded(.down)) * 1000)
        let frac = ms < 10 ? "00\(ms)" : (ms < 100 ? "0\(ms)" : "\(ms)")
        return "\(tm.tm_year + 1900)-\(two(tm.tm_mon + 1))-\(two(tm.tm_mday))T\(two(tm.tm_hour)):\(two(tm.tm_min)):\(two(tm.tm_sec)).\(frac)Z"
    }

    private static func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
}

extension LogRecord.Level {
    /// Lower is more severe, as syslog counts: `log_level` keeps lines at or below its rank.
    public var rank: Int { SyslogFormat.severity(self) }
}
