/// Something a session found that `action_script` is told about, and the environment and arguments the script
/// gets: smtp-gated's names and argument order, so scripts written for it keep working.
public struct ActionEvent: Sendable, Equatable {
    public enum Found: String, Sendable {
        case virus = "VIRUS", spam = "SPAM", maxHost = "MAX_HOST", maxIdent = "MAX_IDENT", sizeLimit = "SIZE_LIMIT"
        case rateLimit = "RATELIMIT"
        case dnsbl = "DNSBL"
        case earlyTalk = "EARLYTALK"
        case regex = "REGEX"
        case spf = "SPF"
    }

    public var found: Found
    public var virusName: String?
    public var spamScore: Double?
    /// The real client.
    public var sourceIP: String
    public var sourcePort: Int?
    /// The real destination.
    public var targetIP: String
    public var targetPort: Int?
    /// The proxy's listener.
    public var localIP: String
    public var localPort: Int?
    public var ident: String?
    public var helo: String?
    public var mailFrom: String?
    public var recipients: Int
    public var size: Int
    public var transaction: Int
    /// Path of a spool file that was kept.
    public var spoolName: String?
    /// Unix time in seconds at which the session began.
    public var sessionStart: Double
    /// For a new lock: the locked client's key (smtp-gated: the lock file) and its duration (-1: until removed).
    public var lockFile: String?
    public var lockDuration = 0

    /// The longest value, in UTF-8 bytes, a variable or argument gets: client text is unbounded otherwise.
    public static let valueLimit = 512

    public init(found: Found, virusName: String? = nil, spamScore: Double? = nil,
                sourceIP: String, sourcePort: Int? = nil, targetIP: String, targetPort: Int? = nil,
                localIP: String, localPort: Int? = nil, ident: String? = nil, helo: String? = nil,
                mailFrom: String? = nil, recipients: Int = 0, size: Int = 0, transaction: Int = 0,
                spoolName: String? = nil, sessionStart: Double) {
        self.found = found
        self.virusName = virusName
        self.spamScore = spamScore
        self.sourceIP = sourceIP
        self.sourcePort = sourcePort
        self.targetIP = targetIP
        self.targetPort = targetPort
        self.localIP = localIP
        self.localPort = localPort
        self.ident = ident
        self.helo = helo
        self.mailFrom = mailFrom
        self.recipients = recipients
        self.size = size
        self.transaction = transaction
        self.spoolName = spoolName
        self.sessionStart = sessionStart
    }

    /// smtp-gated's variables, in its order. IDENT_COUNT and AUTH have fixed values until ident counting and
    /// authentication tracking exist; absent text is the empty string. TIME and UNIXTIME are the
    /// session's start. Every value is made safe with `envSafe`.
    public func environment(proxyName: String) -> [(String, String)] {
        let start = ActionEvent.unixSeconds(sessionStart)
        let pairs: [(String, String)] = [
            ("PROXY_NAME", proxyName),
            ("FOUND", found.rawValue),
            ("VIRUS_NAME", virusName ?? ""),
            ("SPAM_SCORE", spamScore.map(ActionEvent.score) ?? ""),
            ("SOURCE_IP", sourceIP),
            ("SOURCE_PORT", sourcePort.map(String.init) ?? ""),
            ("TARGET_IP", targetIP),
            ("TARGET_PORT", targetPort.map(String.init) ?? ""),
            ("LOCAL_IP", localIP),
            ("LOCAL_PORT", localPort.map(String.init) ?? ""),
            ("IDENT", ident ?? ""),
            ("IDENT_COUNT", "0"),
            ("HELO", helo ?? ""),
            ("MAIL_FROM", mailFrom ?? ""),
            ("RCPTS_TOTAL", String(recipients)),
            ("SIZE", String(size)),
            ("TRANSACTION", String(transaction)),
            ("AUTH", "0"),
            ("SPOOL_NAME", spoolName ?? ""),
            ("LOCK_FILE", lockFile ?? ""),
            ("LOCK_DURATION", String(lockDuration)),
            ("TIME", ActionEvent.utcTime(start)),
            ("UNIXTIME", String(start)),
        ]
        return pairs.map { ($0.0, ActionEvent.envSafe($0.1)) }
    }

    /// smtp-gated's argument vector: the script, what was found, the client, its ident ("-" when none),
    /// the destination.
    public func arguments(script: String) -> [String] {
        let who = ident.map(ActionEvent.envSafe) ?? ""
        return [ActionEvent.envSafe(script), found.rawValue, ActionEvent.envSafe(sourceIP),
                who.isEmpty ? "-" : who, ActionEvent.envSafe(targetIP)]
    }

    /// Text fit for an environment variable or argument: C0 and C1 controls (NUL, CR, LF, ESC, DEL…) become
    /// `?` so a script that echoes a value cannot be fed terminal escapes or extra lines, and the result is cut
    /// to `valueLimit` bytes on a character boundary.
    public static func envSafe(_ text: String) -> String {
        var out = String.UnicodeScalarView()
        var bytes = 0
        for u in text.unicodeScalars {
            let c: Unicode.Scalar = u.value < 0x20 || (0x7f...0x9f).contains(u.value) ? "?" : u
            let width = UTF8.width(c)
            if bytes + width > valueLimit { break }
            out.append(c)
            bytes += width
        }
        return String(out)
    }

    /// One decimal, as spamd reports scores. Values no score can have are left out rather than trapped on.
    static func score(_ value: Double) -> String {
        guard value.isFinite, abs(value) < 1e12 else { return "" }
        let tenths = Int((value * 10).rounded())
        let sign = tenths < 0 ? "-" : ""
        return "\(sign)\(abs(tenths) / 10).\(abs(tenths) % 10)"
    }

    /// Whole seconds, kept within years 1970…9999 so the calendar conversion stays in range.
    static func unixSeconds(_ t: Double) -> Int {
        guard t.isFinite, t > 0 else { return 0 }
        return Int(min(t, 253_402_300_799).rounded(.down))
    }

    /// `YYYY-MM-DD hh:mm:ss` in UTC, from days since the epoch to the proleptic Gregorian calendar
    /// (the era-based conversion: 400-year eras of 146097 days, years starting in March).
    static func utcTime(_ seconds: Int) -> String {
        let days = seconds / 86_400
        let secs = seconds % 86_400
        let z = days + 719_468
        let era = z / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yoe + era * 400 + (month <= 2 ? 1 : 0)
        return "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2)) "
            + "\(pad(secs / 3600, 2)):\(pad(secs % 3600 / 60, 2)):\(pad(secs % 60, 2))"
    }

    private static func pad(_ n: Int, _ width: Int) -> String {
        let s = String(n)
        return s.count < width ? String(repeating: "0", count: width - s.count) + s : s
    }
}
