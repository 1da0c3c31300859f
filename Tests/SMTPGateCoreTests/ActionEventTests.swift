import Testing
@testable import SMTPGateCore

@Suite("action_script: environment and arguments")
struct ActionEventTests {
    static let full = ActionEvent(
        found: .virus, virusName: "Eicar-Signature", spamScore: 1000.0,
        sourceIP: "192.0.2.7", sourcePort: 40000, targetIP: "198.51.100.1", targetPort: 25,
        localIP: "192.0.2.1", localPort: 9199, ident: "alice", helo: "client.test", mailFrom: "<a@x.test>",
        recipients: 3, size: 1234, transaction: 2, spoolName: "/var/spool/smtpgate/s42.1",
        sessionStart: 1_795_255_200.75)

    static let names = ["PROXY_NAME", "FOUND", "VIRUS_NAME", "SPAM_SCORE", "SOURCE_IP", "SOURCE_PORT", "TARGET_IP",
                        "TARGET_PORT", "LOCAL_IP", "LOCAL_PORT", "IDENT", "IDENT_COUNT", "HELO", "MAIL_FROM",
                        "RCPTS_TOTAL", "SIZE", "TRANSACTION", "AUTH", "SPOOL_NAME", "LOCK_FILE", "LOCK_DURATION",
                        "TIME", "UNIXTIME"]

    func env(_ e: ActionEvent, proxyName: String = "gate.test") -> [String: String] {
        Dictionary(e.environment(proxyName: proxyName), uniquingKeysWith: { a, _ in a })
    }

    @Test func everyVariableInSmtpGatedOrderWithExactValues() {
        let pairs = Self.full.environment(proxyName: "gate.test")
        #expect(pairs.map(\.0) == Self.names)
        let expected: [String] = [
            "gate.test", "VIRUS", "Eicar-Signature", "1000.0", "192.0.2.7", "40000", "198.51.100.1", "25",
            "192.0.2.1", "9199", "alice", "0", "client.test", "<a@x.test>", "3", "1234", "2", "0",
            "/var/spool/smtpgate/s42.1", "", "0", "2026-11-21 10:00:00", "1795255200",
        ]
        #expect(pairs.map(\.1) == expected)
    }

    @Test func argumentsAsSmtpGated() {
        #expect(Self.full.arguments(script: "/etc/smtpgate/action.sh")
                == ["/etc/smtpgate/action.sh", "VIRUS", "192.0.2.7", "alice", "198.51.100.1"])
    }

    @Test func missingValuesAreEmptyAndIdentArgumentIsDash() {
        let e = ActionEvent(found: .maxHost, sourceIP: "192.0.2.7", targetIP: "198.51.100.1", localIP: "192.0.2.1",
                            sessionStart: 0)
        let v = env(e)
        for name in ["VIRUS_NAME", "SPAM_SCORE", "SOURCE_PORT", "TARGET_PORT", "LOCAL_PORT", "IDENT", "HELO",
                     "MAIL_FROM", "SPOOL_NAME", "LOCK_FILE"] {
            #expect(v[name] == "", "\(name)")
        }
        #expect(v["FOUND"] == "MAX_HOST")
        #expect(v["RCPTS_TOTAL"] == "0" && v["SIZE"] == "0" && v["TRANSACTION"] == "0")
        #expect(v["TIME"] == "1970-01-01 00:00:00" && v["UNIXTIME"] == "0")
        #expect(e.arguments(script: "/s") == ["/s", "MAX_HOST", "192.0.2.7", "-", "198.51.100.1"])
        var blank = e
        blank.ident = ""
        #expect(blank.arguments(script: "/s")[3] == "-")
    }

    @Test func foundNames() {
        #expect([ActionEvent.Found.virus, .spam, .maxHost, .sizeLimit].map(\.rawValue)
                == ["VIRUS", "SPAM", "MAX_HOST", "SIZE_LIMIT"])
    }

    @Test func spamScoreOneDecimal() {
        #expect(ActionEvent.score(1000) == "1000.0")
        #expect(ActionEvent.score(5.27) == "5.3")
        #expect(ActionEvent.score(0) == "0.0")
        #expect(ActionEvent.score(-1.2) == "-1.2")
        #expect(ActionEvent.score(-0.04) == "0.0")
        #expect(ActionEvent.score(.nan) == "")
        #expect(ActionEvent.score(.infinity) == "")
        #expect(ActionEvent.score(1e300) == "")
    }

    @Test func utcTimeCalendar() {
        #expect(ActionEvent.utcTime(0) == "1970-01-01 00:00:00")
        #expect(ActionEvent.utcTime(951_868_800) == "2000-03-01 00:00:00")
        #expect(ActionEvent.utcTime(1_709_251_199) == "2024-02-29 23:59:59")
        #expect(ActionEvent.utcTime(1_795_255_200) == "2026-11-21 10:00:00")
        #expect(ActionEvent.utcTime(253_402_300_799) == "9999-12-31 23:59:59")
    }

    @Test func sessionStartOutOfRangeIsClamped() {
        for (start, unix) in [(-5.0, "0"), (Double.nan, "0"), (Double.infinity, "0"), (1e30, "253402300799")] {
            var e = Self.full
            e.sessionStart = start
            #expect(env(e)["UNIXTIME"] == unix, "\(start)")
        }
    }

    // MARK: hostile values

    @Test func controlCharactersNeverReachTheScript() {
        var e = Self.full
        e.helo = "evil\r\nFOUND=CLEAN\u{0}\u{1b}[31mred\u{7f}\u{85}\tx"
        e.mailFrom = "<a@x>\nRCPTS_TOTAL=0"
        e.ident = "root\r\n"
        e.virusName = "V\u{0}irus"
        let v = env(e)
        #expect(v["HELO"] == "evil??FOUND=CLEAN??[31mred???x")
        #expect(v["MAIL_FROM"] == "<a@x>?RCPTS_TOTAL=0")
        #expect(v["IDENT"] == "root??")
        #expect(v["VIRUS_NAME"] == "V?irus")
        #expect(e.arguments(script: "/s")[3] == "root??")
        for (name, value) in e.environment(proxyName: "p\r\n") {
            #expect(!value.unicodeScalars.contains { $0.value < 0x20 || (0x7f...0x9f).contains($0.value) }, "\(name)")
        }
    }

    @Test func veryLongValuesAreBoundedOnACharacterBoundary() {
        var e = Self.full
        e.helo = String(repeating: "h", count: 100_000)
        e.mailFrom = "<" + String(repeating: "é", count: 1000) + ">"
        let v = env(e)
        #expect(v["HELO"] == String(repeating: "h", count: ActionEvent.valueLimit))
        let from = v["MAIL_FROM"] ?? ""
        #expect(from.utf8.count == 511)
        #expect(from == "<" + String(repeating: "é", count: 255))
        #expect(ActionEvent.envSafe(String(repeating: "\u{1F4E7}", count: 200)).utf8.count == 512)
        #expect(e.arguments(script: "/s").allSatisfy { $0.utf8.count <= ActionEvent.valueLimit })
    }

    @Test func safeTextIsLeftAlone() {
        #expect(ActionEvent.envSafe("mail.exämple.test [192.0.2.7] ‘quoted’ $HOME `x`") ==
                "mail.exämple.test [192.0.2.7] ‘quoted’ $HOME `x`")
        #expect(ActionEvent.envSafe("") == "")
    }
    // MARK: log lines

    @Test func logLines() {
        let script = "/etc/smtp gate/action.sh"
        #expect(ActionLog.finished(session: "s1", found: .virus, script: script, outcome: .exited(0), time: 0.1234)
                .description == "action session=s1 found=VIRUS script=\"/etc/smtp gate/action.sh\" exit=0 time=0.123")
        #expect(ActionLog.finished(session: "s1", found: .spam, script: "/a", outcome: .signalled(9), time: 1).description
                == "action session=s1 found=SPAM script=/a signal=9 time=1.000")
        let timedOut = ActionLog.finished(session: "s1", found: .spam, script: "/a", outcome: .timedOut, time: 30)
        #expect(timedOut.description == "action session=s1 found=SPAM script=/a error=timeout time=30.000")
        #expect(timedOut.level == .warning)
        #expect(ActionLog.finished(session: "s1", found: .spam, script: "/a", outcome: .exited(0), time: 0).level == .notice)
        #expect(ActionLog.finished(session: "s1", found: .spam, script: "/a", outcome: .exited(1), time: 0).level == .warning)
        #expect(ActionLog.failed(session: "s2", found: .sizeLimit, script: "/a", error: "Permission denied").description
                == "action_failed session=s2 found=SIZE_LIMIT script=/a error=\"Permission denied\"")
        #expect(ActionLog.dropped(session: "s3", found: .maxHost, script: "/a", reason: "queue_full").description
                == "action_dropped session=s3 found=MAX_HOST script=/a reason=queue_full")
    }
}
