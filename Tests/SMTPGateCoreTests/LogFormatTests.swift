import Foundation
import Testing
@testable import SMTPGateCore

@Suite("Log lines: escaping, text and JSON")
struct LogFormatTests {
    static let ctx = SessionContext(id: "s42", listener: "main", client: "192.0.2.7:40000",
                                    local: "192.0.2.1:9199", destination: "198.51.100.1:25")
    static let ts = "2026-11-21T10:00:00.123Z"
    static let all = LogPolicy(helo: true, mailFrom: .all, rcptTo: .all)

    static let txn = Transaction(
        number: 3, helo: "client.test", mailFrom: "<a@x.test>", mailCode: 250,
        recipients: [LogRecord.Recipient(address: "<b@x.test>", code: 250),
                     LogRecord.Recipient(address: "<c@x.test>", code: 550)],
        size: 1234, resultCode: 250, abort: nil)

    func text(_ r: LogRecord) -> String { LogFormat.text.render(r, timestamp: LogFormatTests.ts, pid: 77) }
    func json(_ r: LogRecord) -> String { LogFormat.json.render(r, timestamp: LogFormatTests.ts, pid: 77) }

    func decode(_ line: String, sourceLocation: SourceLocation = #_sourceLocation) -> [String: Any] {
        do {
            let obj = try JSONSerialization.jsonObject(with: Data(line.utf8))
            guard let dict = obj as? [String: Any] else {
                Issue.record("not a JSON object: \(line)", sourceLocation: sourceLocation)
                return [:]
            }
            return dict
        } catch {
            Issue.record("JSON does not parse: \(error): \(line)", sourceLocation: sourceLocation)
            return [:]
        }
    }

    /// `key=value` keys of a text line, after the timestamp, tag, level and event, read as logfmt.
    func textKeys(_ line: String, sourceLocation: SourceLocation = #_sourceLocation) -> [String] {
        guard let pairs = LogfmtReader.pairs(line: line) else {
            Issue.record("not logfmt: \(line)", sourceLocation: sourceLocation)
            return []
        }
        return pairs.map(\.0)
    }

    func textValue(_ line: String, _ key: String) -> String? {
        LogfmtReader.pairs(line: line)?.first { $0.0 == key }?.1
    }

    // MARK: escaping

    @Test(arguments: [
        ("%", "%"), ("\r", "\\x0d"), ("\n", "\\x0a"), ("\0", "\\x00"), (" ", " "), ("\\", "\\x5c"),
        ("\"", "\""), ("\t", "\\x09"), ("\u{7f}", "\\x7f"), ("~", "~"), ("!", "!"), ("a=b", "a=b"),
        ("<a@b>", "<a@b>"), ("100%", "100%"), ("a b\r\nc", "a b\\x0d\\x0ac"), ("é", "é"),
        ("\u{85}", "\\xc2\\x85"), ("a\u{2028}b", "a\\xe2\\x80\\xa8b"), ("\u{202e}fdp.exe", "\\xe2\\x80\\xaefdp.exe"),
        ("\u{feff}", "\\xef\\xbb\\xbf"), ("日本", "日本"),
    ])
    func escapeSpecialBytes(input: String, expected: String) {
        #expect(LogEscape.escape(input) == expected)
    }

    @Test func bytesThatAreNotUTF8AreEscapedOneByOne() {
        #expect(LogEscape.escape([0x80, 0xe9, 0xff] as [UInt8]) == "\\x80\\xe9\\xff")
        // overlong "/", a surrogate, beyond U+10FFFF, a cut sequence: none is UTF-8
        #expect(LogEscape.escape([0xc0, 0xaf] as [UInt8]) == "\\xc0\\xaf")
        #expect(LogEscape.escape([0xed, 0xa0, 0x80] as [UInt8]) == "\\xed\\xa0\\x80")
        #expect(LogEscape.escape([0xf4, 0x90, 0x80, 0x80] as [UInt8]) == "\\xf4\\x90\\x80\\x80")
        #expect(LogEscape.escape([0x61, 0xe2, 0x82] as [UInt8]) == "a\\xe2\\x82")
        #expect(LogEscape.escape([0xe2, 0x82, 0xac] as [UInt8]) == "€")
        for byte in 0...255 {
            let e = LogEscape.escape([UInt8(byte)])
            let plain = byte >= 0x20 && byte <= 0x7e && byte != 0x5c
            #expect(e == (plain ? String(UnicodeScalar(UInt8(byte))) : String(format: "\\x%02x", byte)), "byte \(byte)")
        }
    }

    @Test func escapedTextUnescapesToItsBytes() {
        let bytes: [UInt8] = [0x61, 0x5c, 0x0d, 0x0a, 0x00, 0xff, 0xc3, 0xa9, 0x20, 0x22]
        #expect(LogEscape.unescape(LogEscape.escape(bytes)) == bytes)
        #expect(LogEscape.unescape("\\x4") == Array("\\x4".utf8), "a cut escape stays as written")
        #expect(LogEscape.unescape("\\xzz\\x41") == Array("\\xzzA".utf8))
    }

    @Test func heloWithLineBreaksStaysOnOneLine() {
        let h = Harness()
        h.server(Harness.greeting)
        h.client(bytes: b("EHLO a\rb\u{0b}c%n \"x\" result=250\\") + [0x00, 0xc3, 0xa9] + b("\r\n"))
        h.server(Harness.ehloReply(["PIPELINING"]))
        h.client("MAIL FROM:<a@x.test>\r\nRSET\r\n")
        let r = h.server("250 ok\r\n250 ok\r\n")
        guard let t = r.transactions.first else { Issue.record("no transaction"); return }
        for line in [text(SessionLog.eventLine(.transaction(t), LogFormatTests.ctx, policy: LogFormatTests.all)),
                     json(SessionLog.eventLine(.transaction(t), LogFormatTests.ctx, policy: LogFormatTests.all))] {
            #expect(!line.contains("\n") && !line.contains("\r") && !line.contains("\0"))
            #expect(line.unicodeScalars.allSatisfy { $0.value >= 0x20 && $0.value != 0x7f && !LogEscape.isInvisibleControl($0) })
        }
        let line = text(SessionLog.eventLine(.transaction(t), LogFormatTests.ctx, policy: LogFormatTests.all))
        #expect(line.contains(#" helo="a\x0db\x0bc%n \"x\" result=250\x5c\x00é" "#))
        #expect(textValue(line, "helo") == #"a\x0db\x0bc%n "x" result=250\x5c\x00é"#)
        #expect(LogfmtReader.pairs(line: line)?.filter { $0.0 == "result" }.map(\.1) == ["aborted"], "the HELO cannot forge a field")
        let j = decode(json(SessionLog.eventLine(.transaction(t), LogFormatTests.ctx, policy: LogFormatTests.all)))
        #expect(j["helo"] as? String == "a\rb\u{0b}c%n \"x\" result=250\\\0é", "JSON has the client's own text back")
        #expect(j["result"] as? String == "aborted")
        let close = text(SessionLog.close(LogFormatTests.ctx, SessionLog.Totals(
            helo: h.m.helo, transactions: 0, bytesIn: 1, bytesOut: 2, duration: 0.5, closedBy: "client",
            reason: "quit"), policy: LogFormatTests.all))
        #expect(!close.contains("\n") && !close.contains("\r"))
        #expect(LogfmtReader.pairs(line: close)?.filter { $0.0 == "result" }.isEmpty == true)
    }

    /// Random bytes, weighted to what breaks lines and quoting: controls, quotes, blanks, '=', backslashes,
    /// stray UTF-8 lead and continuation bytes, and the separators and overrides of Unicode.
    @Test func randomClientBytesNeverSplitALineAndReadBack() throws {
        var rng = SplitMix64(seed: 0x10_6F47)
        let tricky: [[UInt8]] = [[0x0d], [0x0a], [0x00], [0x22], [0x20], [0x3d], [0x5c], [0x1b], [0x7f], [0xc3],
                                 [0xa9], [0xff], [0xe2, 0x80, 0xa8], [0xe2, 0x80, 0xae], [0xc2, 0x85], Array("x=1".utf8),
                                 Array("\\x41".utf8), Array("\\\"".utf8), Array("é".utf8)]
        for round in 0..<2000 {
            var bytes: [UInt8] = []
            for _ in 0..<Int.random(in: 0...24, using: &rng) {
                bytes += Bool.random(using: &rng) ? tricky.randomElement(using: &rng)! : [UInt8.random(in: 0...255, using: &rng)]
            }
            let r = LogRecord(.info, "x", [("v", .text(LogEscape.escape(bytes))), ("after", .int(round))])
            let line = text(r)
            #expect(line.unicodeScalars.allSatisfy { $0.value >= 0x20 && $0.value != 0x7f && !LogEscape.isInvisibleControl($0) },
                    "\(bytes)")
            let pairs = try #require(LogfmtReader.pairs(line: line), "\(bytes): \(line)")
            #expect(pairs.map(\.0) == ["v", "after"], "\(bytes): \(line)")
            #expect(LogEscape.unescape(pairs.first?.1 ?? "") == bytes, "\(bytes): \(line)")
            let j = decode(json(r))
            #expect(j["after"] as? Int == round)
            if let utf8 = String(validating: bytes, as: UTF8.self) {
                #expect(j["v"] as? String == utf8, "\(bytes)")
            }
        }
    }

    // MARK: text

    @Test func transactionTextLine() {
        let r = SessionLog.eventLine(.transaction(LogFormatTests.txn), LogFormatTests.ctx, policy: LogFormatTests.all)
        #expect(text(r) == "2026-11-21T10:00:00.123Z smtpgate[77]: info transaction session=s42 client=192.0.2.7:40000 "
            + "dest=198.51.100.1:25 trans=3 helo=client.test from=<a@x.test> mail=250 rcpt=<b@x.test>:250 "
            + "rcpt=<c@x.test>:550 rcpts=2 size=1234 result=250")
    }

    @Test func abortedTransactionTextLine() {
        var t = LogFormatTests.txn
        t.resultCode = nil
        t.abort = .rset
        t.recipients = []
        t.mailFrom = ""
        let line = text(SessionLog.eventLine(.transaction(t), LogFormatTests.ctx, policy: LogFormatTests.all))
        #expect(line.hasSuffix(" from=<> mail=250 rcpts=0 size=1234 result=aborted why=rset"))
        #expect(!line.contains("rcpt="))
    }

    @Test func recipientWithoutCode() {
        var t = LogFormatTests.txn
        t.recipients = [LogRecord.Recipient(address: "<d@x.test>", code: nil)]
        let line = text(SessionLog.eventLine(.transaction(t), LogFormatTests.ctx, policy: LogFormatTests.all))
        #expect(line.contains(" rcpt=<d@x.test>:- "))
        let j = decode(json(SessionLog.eventLine(.transaction(t), LogFormatTests.ctx, policy: LogFormatTests.all)))
        let rc = j["rcpt"] as? [[String: Any]]
        #expect(rc?.first?["to"] as? String == "<d@x.test>")
        #expect(rc?.first?["code"] is NSNull)
    }

    @Test func otherEventLines() {
        let c = LogFormatTests.ctx
        #expect(text(SessionLog.open(c)) == "\(LogFormatTests.ts) smtpgate[77]: info open session=s42 listener=main "
            + "client=192.0.2.7:40000 local=192.0.2.1:9199 dest=198.51.100.1:25")
        #expect(text(SessionLog.reject(c, reason: "max_per_host", limit: 8))
            == "\(LogFormatTests.ts) smtpgate[77]: notice reject session=s42 listener=main client=192.0.2.7:40000 "
            + "reason=max_per_host limit=8")
        #expect(text(SessionLog.connectFailed(c, error: "connection refused"))
            == "\(LogFormatTests.ts) smtpgate[77]: warning connect_failed session=s42 client=192.0.2.7:40000 "
            + "dest=198.51.100.1:25 error=\"connection refused\"")
        #expect(text(SessionLog.eventLine(.takeover(reason: "pipeline overflow"), c, policy: LogFormatTests.all))
            == "\(LogFormatTests.ts) smtpgate[77]: notice takeover session=s42 reason=\"pipeline overflow\"")
        #expect(text(SessionLog.eventLine(.startTLS, c, policy: LogFormatTests.all))
            == "\(LogFormatTests.ts) smtpgate[77]: info starttls session=s42")
    }

    @Test func closeTextLine() {
        let totals = SessionLog.Totals(helo: "client.test", transactions: 2, bytesIn: 1000, bytesOut: 300,
                                       duration: 1.5, closedBy: "client", reason: "quit")
        #expect(text(SessionLog.close(LogFormatTests.ctx, totals, policy: LogFormatTests.all))
            == "\(LogFormatTests.ts) smtpgate[77]: info close session=s42 listener=main client=192.0.2.7:40000 "
            + "dest=198.51.100.1:25 helo=client.test trans=2 bytes_in=1000 bytes_out=300 duration=1.500 "
            + "closed_by=client reason=quit")
    }

    @Test func emptyTextValueIsTwoQuotes() {
        let r = LogRecord(.info, "x", [("a", .text("")), ("b", .int(0))])
        #expect(LogFormat.textBody(r) == "x a=\"\" b=0")
        #expect(r.description == "x a=\"\" b=0")
    }

    @Test(arguments: [
        ("plain", "plain"), ("a b", "\"a b\""), ("a=b", "\"a=b\""), ("say \"hi\"", #""say \"hi\"""#),
        ("\"", #""\"""#), ("<a@b>", "<a@b>"), ("é", "é"), ("a\\x20b", "a\\x20b"),
        ("raw\nline", "raw\\x0aline"), ("raw\u{2028}sep", "raw\\xe2\\x80\\xa8sep"), ("tab\there", "tab\\x09here"),
    ])
    func textValuesAreQuotedOnlyWhenTheyMustBe(value: String, rendered: String) {
        let body = LogFormat.textBody(LogRecord(.info, "x", [("v", .text(value)), ("after", .int(1))]))
        #expect(body == "x v=\(rendered) after=1")
        #expect(LogfmtReader.pairs(body.dropFirst(2))?.map(\.0) == ["v", "after"])
    }

    @Test(arguments: [(0.0, "0.000"), (1.5, "1.500"), (0.0123, "0.012"), (12.3456, "12.346"), (0.05, "0.050"),
                      (3600.0, "3600.000"), (0.0004, "0.000")])
    func secondsFormatting(value: Double, expected: String) {
        #expect(LogFormat.formatSeconds(value) == expected)
    }

    @Test func freeTextValuesFollowTheSameEscapeRule() {
        let raw = "t.conf:3: bad \"x\" \\ \r\n%\u{0}é"
        let r = LogRecord(.error, "reload", [("error", .text(LogEscape.escape(raw)))])
        let line = text(r)
        #expect(line == "\(LogFormatTests.ts) smtpgate[77]: error reload "
            + #"error="t.conf:3: bad \"x\" \x5c \x0d\x0a%\x00é""#)
        #expect(!line.contains("\n") && !line.contains("\r"))
        #expect(textKeys(line) == ["error"])
        let j = decode(json(r))
        #expect(j["error"] as? String == raw)
        #expect(json(r).contains(#""error":"t.conf:3: bad \"x\" \\ \r\n%\u0000é""#), "JSON's own escapes only")
    }

    @Test func aByteThatIsNotUTF8StaysEscapedInJSON() {
        let r = LogRecord(.info, "x", [("v", .text(LogEscape.escape([0x61, 0xff, 0x20, 0xc3, 0xa9] as [UInt8])))])
        #expect(json(r).hasSuffix(#","v":"a\\xff é"}"#))
        #expect(decode(json(r))["v"] as? String == "a\\xff é")
    }

    // MARK: JSON

    @Test func transactionJSONParsesAndHasTheSameFields() {
        let r = SessionLog.eventLine(.transaction(LogFormatTests.txn), LogFormatTests.ctx, policy: LogFormatTests.all)
        let line = json(r)
        #expect(!line.contains("\n"))
        let j = decode(line)
        #expect(j["ts"] as? String == LogFormatTests.ts)
        #expect(j["level"] as? String == "info")
        #expect(j["event"] as? String == "transaction")
        #expect(j["session"] as? String == "s42")
        #expect(j["client"] as? String == "192.0.2.7:40000")
        #expect(j["dest"] as? String == "198.51.100.1:25")
        #expect(j["trans"] as? Int == 3)
        #expect(j["helo"] as? String == "client.test")
        #expect(j["from"] as? String == "<a@x.test>")
        #expect(j["mail"] as? Int == 250)
        #expect(j["rcpts"] as? Int == 2)
        #expect(j["size"] as? Int == 1234)
        #expect(j["result"] as? Int == 250)
        let rcpt = j["rcpt"] as? [[String: Any]]
        #expect(rcpt?.count == 2)
        #expect(rcpt?.first?["to"] as? String == "<b@x.test>")
        #expect(rcpt?.first?["code"] as? Int == 250)
        #expect(rcpt?.last?["to"] as? String == "<c@x.test>")
        #expect(rcpt?.last?["code"] as? Int == 550)

        let keys = Set(textKeys(text(r)))
        #expect(Set(j.keys) == keys.union(["ts", "level", "event"]))
    }

    @Test func abortedJSON() {
        var t = LogFormatTests.txn
        t.resultCode = nil
        t.abort = .serverClosed
        let j = decode(json(SessionLog.eventLine(.transaction(t), LogFormatTests.ctx, policy: LogFormatTests.all)))
        #expect(j["result"] as? String == "aborted")
        #expect(j["why"] as? String == "server_closed")
    }

    @Test func closeJSON() {
        let totals = SessionLog.Totals(helo: "a b", transactions: 1, bytesIn: 10, bytesOut: 20,
                                       duration: 0.25, closedBy: "proxy", reason: "idle_timeout")
        let r = SessionLog.close(LogFormatTests.ctx, totals, policy: LogFormatTests.all)
        let j = decode(json(r))
        #expect(j["event"] as? String == "close")
        #expect(j["helo"] as? String == "a b")
        #expect(j["bytes_in"] as? Int == 10)
        #expect(j["bytes_out"] as? Int == 20)
        #expect((j["duration"] as? Double).map { abs($0 - 0.25) < 1e-9 } == true)
        #expect(j["closed_by"] as? String == "proxy")
        #expect(j["reason"] as? String == "idle_timeout")
        #expect(Set(j.keys) == Set(textKeys(text(r))).union(["ts", "level", "event"]))
    }

    @Test func jsonStringsWithAwkwardCharactersRoundTrip() {
        let raw = "q\"b\\s/\n\r\t\u{1}\u{7f}é"
        let r = LogRecord(.warning, "odd", [("v", .text(raw))])
        let line = json(r)
        #expect(!line.contains("\n") && !line.contains("\r"))
        let j = decode(line)
        #expect(j["v"] as? String == raw)
        #expect(j["level"] as? String == "warning")
    }

    @Test func everyEventKindIsValidJSON() {
        let c = LogFormatTests.ctx
        let records = [
            SessionLog.open(c), SessionLog.reject(c, reason: "max_connections", limit: 64),
            SessionLog.connectFailed(c, error: "timed out"),
            SessionLog.eventLine(.takeover(reason: "x y"), c, policy: LogFormatTests.all),
            SessionLog.eventLine(.startTLS, c, policy: LogFormatTests.all),
        ]
        for r in records {
            let j = decode(json(r))
            #expect(j["event"] as? String == r.event)
            #expect(Set(j.keys) == Set(textKeys(text(r))).union(["ts", "level", "event"]), "\(r.event)")
        }
    }

    // MARK: policies

    @Test func logHeloOffHidesHelo() {
        let p = LogPolicy(helo: false, mailFrom: .all, rcptTo: .all)
        let t = text(SessionLog.eventLine(.transaction(LogFormatTests.txn), LogFormatTests.ctx, policy: p))
        #expect(!t.contains("helo="))
        let c = text(SessionLog.close(LogFormatTests.ctx, SessionLog.Totals(
            helo: "client.test", transactions: 0, bytesIn: 0, bytesOut: 0, duration: 0, closedBy: "client",
            reason: "quit"), policy: p))
        #expect(!c.contains("helo="))
        let j = decode(json(SessionLog.eventLine(.transaction(LogFormatTests.txn), LogFormatTests.ctx, policy: p)))
        #expect(j["helo"] == nil)
    }

    @Test func logMailFromPolicies() {
        var rejected = LogFormatTests.txn
        rejected.mailCode = 553
        let none = LogPolicy(helo: true, mailFrom: [], rcptTo: .all)
        let acc = LogPolicy(helo: true, mailFrom: .accepted, rcptTo: .all)
        let rej = LogPolicy(helo: true, mailFrom: .rejected, rcptTo: .all)
        func has(_ t: Transaction, _ p: LogPolicy) -> Bool {
            text(SessionLog.eventLine(.transaction(t), LogFormatTests.ctx, policy: p)).contains(" from=")
        }
        #expect(!has(LogFormatTests.txn, none))
        #expect(has(LogFormatTests.txn, acc))
        #expect(!has(rejected, acc))
        #expect(!has(LogFormatTests.txn, rej))
        #expect(has(rejected, rej))
        let j = decode(json(SessionLog.eventLine(.transaction(LogFormatTests.txn), LogFormatTests.ctx, policy: none)))
        #expect(j["from"] == nil)
    }

    @Test func logRcptToPolicies() {
        func line(_ set: Config.AddressLogging) -> String {
            text(SessionLog.eventLine(.transaction(LogFormatTests.txn), LogFormatTests.ctx,
                                  policy: LogPolicy(helo: true, mailFrom: .all, rcptTo: set)))
        }
        #expect(line(.accepted).contains(" rcpt=<b@x.test>:250 rcpts=2 "))
        #expect(!line(.accepted).contains("<c@x.test>"))
        #expect(line(.rejected).contains(" rcpt=<c@x.test>:550 rcpts=2 "))
        #expect(!line(.rejected).contains("<b@x.test>"))
        #expect(!line([]).contains("rcpt="))
        #expect(line([]).contains(" rcpts=2 "))
        let j = decode(json(SessionLog.eventLine(.transaction(LogFormatTests.txn), LogFormatTests.ctx,
                                             policy: LogPolicy(helo: true, mailFrom: .all, rcptTo: .rejected))))
        let rc = j["rcpt"] as? [[String: Any]]
        #expect(rc?.count == 1)
        #expect(rc?.first?["code"] as? Int == 550)
    }

    @Test func policyFromConfig() {
        var c = Config()
        c.logHelo = false
        c.logMailFrom = .rejected
        c.logRcptTo = []
        let p = LogPolicy(config: c)
        #expect(p.helo == false)
        #expect(p.mailFrom == .rejected)
        #expect(p.rcptTo == [])
    }

    @Test func addressLoggingDecisions() {
        #expect(Config.AddressLogging.accepted.logs(code: 250))
        #expect(!Config.AddressLogging.accepted.logs(code: 550))
        #expect(Config.AddressLogging.accepted.logs(code: nil))
        #expect(Config.AddressLogging.rejected.logs(code: 451))
        #expect(!Config.AddressLogging.rejected.logs(code: 251))
        #expect(!Config.AddressLogging.rejected.logs(code: nil))
        #expect(!Config.AddressLogging().logs(code: 250))
        #expect(Config.AddressLogging.all.logs(code: 550))
    }
}

extension SessionLog {
    /// The line of an event that has one (every event but a bare reply code).
    static func eventLine(_ e: SessionEvent, _ c: SessionContext, policy: LogPolicy,
                          sourceLocation: SourceLocation = #_sourceLocation) -> LogRecord {
        guard let r = event(e, c, policy: policy) else {
            Issue.record("\(e) has no log line", sourceLocation: sourceLocation)
            return LogRecord(.error, "none")
        }
        return r
    }
}
