import Testing
@testable import SMTPGateCore

@Suite("earlytalker")
struct EarlyTalkerTests {
    func parse(_ lines: String) throws -> Config {
        try ConfigParser.parse("mode fixed\nfixed_server 192.0.2.25\n" + lines, file: "t.conf")
    }

    @Test func offByDefaultAndReadBack() throws {
        let off = try parse("")
        #expect(!off.earlyTalker && off.earlyTalkerWait == 0)
        let on = try parse("earlytalker 1\nearlytalker_wait 6\n")
        #expect(on.earlyTalker && on.earlyTalkerWait == 6)
        #expect(ConfigParser.render(on).contains("\nearlytalker yes\nearlytalker_wait 6\n"))
        #expect(ConfigParser.warnings(try parse("earlytalker_wait 2\n")).contains { $0.contains("earlytalker is off") })
        #expect(ConfigParser.warnings(on).isEmpty)
    }

    @Test(arguments: ["earlytalker maybe", "earlytalker_wait -1", "earlytalker_wait 61", "earlytalker_wait nan"])
    func badValuesNameTheLine(_ line: String) {
        #expect {
            _ = try parse(line + "\n")
        } throws: { e in (e as? ConfigError)?.line == 3 }
    }

    @Test func theClientIsToldAndTheLogSaysHowMuchItSent() {
        let r = Refusal.earlyTalker(bytes: 17)
        #expect(String(decoding: ProxyReplies(proxyName: "gw").refusal(r), as: UTF8.self)
                == "554 5.5.1 gw: protocol error: you talked before the greeting\r\n")
        let c = SessionContext(id: "s-1", listener: "main", client: "192.0.2.7:4000", local: "-", destination: "-")
        #expect(SessionLog.record(for: .refused(c, r), policy: LogPolicy(helo: true, mailFrom: .all, rcptTo: .all))?.description
                == "reject session=s-1 listener=main client=192.0.2.7:4000 reason=earlytalk bytes=17")
        #expect(Finding.Kind.earlyTalk(bytes: 17).lockCause == .earlytalk)
        #expect(ActionEvent.Found.earlyTalk.rawValue == "EARLYTALK" && ActionEvent.Found.dnsbl.rawValue == "DNSBL")
    }

    @Test func theMachineSaysWhenTheGreetingHasGoneOut() {
        var m = SessionMachine(settings: SessionSettings(proxyName: "gw", pipelineSize: 8, onTakeoverCmds: 3, forbidStartTLS: false))
        #expect(!m.greeted)
        _ = m.serverBytes(Array("220-mx.test ESMTP\r\n".utf8))
        #expect(!m.greeted, "half a greeting is not a greeting")
        let out = m.serverBytes(Array("220 ready\r\n".utf8))
        #expect(m.greeted && !out.toClient.isEmpty)
    }
}
