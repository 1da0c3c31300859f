import Testing
@testable import SMTPGateCore

/// Syslog datagrams: the priority, the two formats, and the options that choose facility and level.
@Suite("Syslog format and options")
struct SyslogFormatTests {
    static let record: LogRecord = {
        var r = LogRecord(.warning, "reject", [("session", .text("ab-1")), ("helo", .text(#"a\x0ab"#))])
        r.tag = "smtpgate-in"
        return r
    }()

    @Test func rfc5424IsUTCWithMillisecondsAndTheEventAsMsgID() {
        let line = SyslogFormat.rfc5424.render(Self.record, facility: .mail, tag: "smtpgate-in", pid: 42, hostname: "gw1",
                                               time: 1_764_769_200.25)
        #expect(line == #"<20>1 2025-12-03T13:40:00.250Z gw1 smtpgate-in 42 reject - warning reject session=ab-1 helo=a\x0ab"#)
        let noHost = SyslogFormat.rfc5424.render(Self.record, facility: .mail, tag: "t", pid: 1, hostname: "", time: 0)
        #expect(noHost.hasPrefix("<20>1 1970-01-01T00:00:00.000Z - t 1 reject - "))
    }

    @Test func rfc3164IsWhatSyslog3Sends() {
        let line = SyslogFormat.rfc3164.render(Self.record, facility: .local7, tag: "smtpgate", pid: 7, hostname: "gw1", time: 1_764_769_200)
        // local7 (23) * 8 + warning (4); the time is local, so only its shape is fixed here
        #expect(line.hasPrefix("<188>"))
        #expect(line.hasSuffix(#" smtpgate[7]: warning reject session=ab-1 helo=a\x0ab"#))
        let stamp = line.dropFirst(5).prefix(15)
        #expect(SyslogFormat.months.contains(String(stamp.prefix(3))) && stamp.utf8.count == 15 && stamp.dropFirst(3).first == " ")
        #expect(!line.contains("\n"))
    }

    @Test(arguments: [(LogRecord.Level.error, 3), (.warning, 4), (.notice, 5), (.info, 6), (.debug, 7)])
    func levelsAreSyslogSeverities(_ level: LogRecord.Level, _ severity: Int) {
        #expect(SyslogFormat.severity(level) == severity && level.rank == severity)
        #expect(SyslogFormat.rfc3164.render(LogRecord(level, "x"), facility: .kern, tag: "t", pid: 1, hostname: "h", time: 0)
                    .hasPrefix("<\(severity)>"))
    }

    @Test(arguments: [("log_level warning", "log_level warning"), ("log_level WARN", "log_level warning"),
                      ("log_level error", "log_level err"), ("log_level 7", "log_level debug"), ("log_level emerg", "log_level emerg"),
                      ("log_facility LOCAL5", "log_facility local5"), ("log_facility daemon", "log_facility daemon")])
    func optionsReadAndShow(_ line: String, _ shown: String) throws {
        let c = try ConfigParser.parse("mode fixed\nfixed_server 127.0.0.1\n\(line)\n", file: "t.conf")
        #expect(ConfigParser.render(c).contains("\n\(shown)\n"))
    }

    @Test func defaultsAreMailAndInfo() throws {
        let c = try ConfigParser.parse("mode fixed\nfixed_server 127.0.0.1\n", file: "t.conf")
        #expect(c.logFacility == .mail && c.logLevel == 6)
    }

    @Test(arguments: ["log_level 8", "log_level -1", "log_level loud", "log_level 07", "log_facility mail2", "log_facility local8",
                      "log_facility", "log_level \u{1b}[31m"])
    func badValuesAreRefused(_ line: String) {
        #expect(throws: ConfigError.self) { try ConfigParser.parse("mode fixed\nfixed_server 127.0.0.1\n\(line)\n", file: "t.conf") }
    }
}
