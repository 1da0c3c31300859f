import Testing
@testable import SMTPGateCore

@Suite("The forward log line and per-listener log names")
struct ForwardLogTests {
    func connection(_ result: ForwardLog.Result) -> ForwardLog.Connection {
        var c = ForwardLog.Connection(session: "ab-1", listener: "web", client: "192.0.2.7:40000", destination: "10.0.0.2:443")
        c.bytesIn = 517
        c.bytesOut = 4096
        c.duration = 1.25
        c.result = result
        return c
    }

    @Test func aRelayedConnectionInTextAndJSON() {
        let r = ForwardLog.connection(connection(.doneLocalClosed))
        #expect(r.level == .info)
        #expect(LogFormat.text.render(r, timestamp: "T", pid: 7)
            == "T smtpgate[7]: info forward session=ab-1 listener=web client=192.0.2.7:40000 dest=10.0.0.2:443 bytes_in=517 bytes_out=4096 duration=1.250 result=done-local-closed")
        #expect(LogFormat.json.render(r, timestamp: "T", pid: 7)
            == #"{"ts":"T","level":"info","event":"forward","session":"ab-1","listener":"web","client":"192.0.2.7:40000","dest":"10.0.0.2:443","bytes_in":517,"bytes_out":4096,"duration":1.250,"result":"done-local-closed"}"#)
    }

    @Test func aRefusalNamesItsRuleAtNoticeLevel() {
        var c = connection(.denied)
        c.pattern = "192.0.2.*"
        c.global = true
        let r = ForwardLog.connection(c)
        #expect(r.level == .notice)
        let text = LogFormat.text.render(r, timestamp: "T", pid: 7)
        #expect(text.hasSuffix(" result=denied pattern=192.0.2.* rule=global"))
        for result in [ForwardLog.Result.notAllowed, .locked, .tooManyConnections, .tooManyFromHost, .loop] {
            #expect(ForwardLog.connection(connection(result)).level == .notice)
        }
        for result in [ForwardLog.Result.doneRemoteClosed, .connectFailed, .timeout, .shutdown, .lookupFailed] {
            #expect(ForwardLog.connection(connection(result)).level == .info)
        }
    }

    @Test func rinetdsResultNames() {
        #expect(ForwardLog.Result.allCases.map(\.rawValue) == [
            "done-local-closed", "done-remote-closed", "not-allowed", "denied", "local-connect-failed", "locked",
            "too-many-connections", "too-many-from-host", "lookup-failed", "loop", "timeout", "shutdown",
        ])
    }

    @Test func anErrorFromTheKernelCannotSplitTheLine() {
        var c = connection(.connectFailed)
        c.error = LogEscape.escape("refused\nforged=1")
        let text = LogFormat.text.render(ForwardLog.connection(c), timestamp: "T", pid: 7)
        #expect(!text.contains("\n"))
        #expect(text.hasSuffix(#"error="refused\x0aforged=1""#))
        #expect(LogfmtReader.pairs(line: text)?.filter { $0.0 == "forged" }.isEmpty == true)
    }

    @Test func syslogNameReplacesTheProgramInTextAndIsAFieldInJSON() throws {
        var r = ForwardLog.connection(connection(.doneRemoteClosed))
        r.tag = "smtpgate-out"
        #expect(LogFormat.text.render(r, timestamp: "T", pid: 7).hasPrefix("T smtpgate-out[7]: info forward "))
        #expect(LogFormat.json.render(r, timestamp: "T", pid: 7).hasPrefix(#"{"ts":"T","level":"info","event":"forward","tag":"smtpgate-out","#))
        let f = try ConfigParser.parseFile("mode fixed\nfixed_server 127.0.0.1\n[listener out]\nport 2587\nsyslog_name postfix-out/smtpd\n", file: "t")
        #expect(f.listeners[0].config.syslogName == "postfix-out/smtpd")
        #expect(LogPolicy(config: f.listeners[0].config).tag == "postfix-out/smtpd")
        #expect(throws: ConfigError.self) {
            try ConfigParser.parseFile("mode fixed\nfixed_server 127.0.0.1\nsyslog_name a\u{1b}b\n", file: "t")
        }
    }
}
