import Testing
@testable import SMTPGateCore

/// One way a scanned message is refused, with everything the client and the log must see.
struct Rejection: Sendable, CustomTestStringConvertible {
    var verdict: MessageVerdict
    var summary: ScanSummary
    var code: Int
    var enhanced: String
    var text: String
    var why: String
    var takeover: String

    var testDescription: String { why }

    /// The reply line, with or without the enhanced status code.
    func reply(enhanced withCode: Bool) -> String {
        "\(code) " + (withCode ? enhanced + " " : "") + "\(PN): \(text)\r\n"
    }
}

@Suite("Verdicts on a held message: deliver, or abort upstream and answer the client")
struct VerdictTests {
    static let rejections: [Rejection] = [
        Rejection(verdict: .virus("Eicar-Test-Signature"), summary: ScanSummary(result: .virus, virus: "Eicar-Test-Signature"),
                  code: 550, enhanced: "5.7.1", text: "virus found: Eicar-Test-Signature", why: "virus", takeover: "virus found"),
        Rejection(verdict: .spam(score: 9.5, threshold: 7), summary: ScanSummary(result: .spam, score: 9.5),
                  code: 550, enhanced: "5.7.1", text: "message looks like spam (score 9.5, spam_threshold 7.0)", why: "spam",
                  takeover: "spam found"),
        Rejection(verdict: .notScanned("clamd: timed out", spool: false), summary: ScanSummary(result: .error),
                  code: 451, enhanced: "4.3.0", text: "message not scanned, try again later (clamd: timed out)",
                  why: "scan_error", takeover: "message not scanned"),
        Rejection(verdict: .notScanned("spool: no space left on device", spool: true), summary: ScanSummary(result: .error),
                  code: 451, enhanced: "4.3.0", text: "message not scanned, try again later (spool: no space left on device)",
                  why: "spool_error", takeover: "message not scanned"),
    ]

    static let noEnhancedCaps = ["PIPELINING", "SIZE 10240000", "8BITMIME"]
    static let body = "Subject: x\r\n\r\n..body\r\n"
    /// `body` as stored.
    static let size = 21

    /// A session whose first message has ended and waits for its verdict; `after` is sent in the same chunk.
    static func awaiting(caps: [String] = Harness.defaultCaps, after: String = "",
                         sourceLocation: SourceLocation = #_sourceLocation) -> (ScanHarness, mark: Int) {
        let sh = ScanHarness()
        sh.openInData(caps: caps, sourceLocation: sourceLocation)
        let mark = sh.serverCount
        let s = sh.client(body + ".\r\n" + after, sourceLocation: sourceLocation)
        #expect(s.server == body, sourceLocation: sourceLocation)
        #expect(s.toClient.isEmpty, sourceLocation: sourceLocation)
        #expect(sh.ends == [size], sourceLocation: sourceLocation)
        return (sh, mark)
    }

    static func transaction(scan: ScanSummary?, result: Int?, abort: String?) -> Transaction {
        Transaction(number: 1, helo: "client.test", mailFrom: "<a@x.test>", mailCode: 250,
                    recipients: [LogRecord.Recipient(address: "<b@x.test>", code: 250)], size: size,
                    resultCode: result, abort: abort.flatMap(EndReason.init(rawValue:)), scan: scan)
    }

    // MARK: deliver

    @Test func deliverSendsTheDotAndRelaysTheMTAReply() {
        let (sh, mark) = VerdictTests.awaiting()
        let scan = ScanSummary(result: .clean, score: 0.4)
        let v = sh.verdict(.deliver, scan: scan)
        #expect(v.server == ".\r\n")
        #expect(v.toClient.isEmpty && v.events.isEmpty && !v.closeServer && !v.closeClient)
        #expect(sh.server(since: mark) == VerdictTests.body + ".\r\n")
        let r = sh.server("250 2.0.0 Ok: queued as 4711\r\n")
        #expect(r.client == "250 2.0.0 Ok: queued as 4711\r\n")
        #expect(r.transactions == [VerdictTests.transaction(scan: scan, result: 250, abort: nil)])
        #expect(sh.verdict(.deliver).raw.first == MachineOutput(), "a second verdict does nothing")
        #expect(sh.client("QUIT\r\n").server == "QUIT\r\n")
        #expect(sh.server("221 2.0.0 Bye\r\n").client == "221 2.0.0 Bye\r\n")
        #expect(sh.m.closeReason == "quit")
    }

    @Test func deliveredSpamIsLoggedAsSpam() {
        let (sh, _) = VerdictTests.awaiting()
        let scan = ScanSummary(result: .spam, score: 12.5)
        #expect(sh.verdict(.deliver, scan: scan).server == ".\r\n")
        let r = sh.server("250 2.0.0 queued\r\n")
        #expect(r.transactions.first?.scan == scan)
        #expect(r.transactions.first?.resultCode == 250)
    }

    @Test func theMTARefusingAfterTheDotIsRelayed() {
        let (sh, _) = VerdictTests.awaiting()
        #expect(sh.verdict(.deliver, scan: ScanSummary(result: .clean)).server == ".\r\n")
        let r = sh.server("554 5.7.1 rejected by policy\r\n")
        #expect(r.client == "554 5.7.1 rejected by policy\r\n")
        #expect(r.transactions.first?.resultCode == 554)
    }

    // MARK: refusals

    @Test(arguments: rejections, [true, false])
    func refusedMessageIsAbortedUpstream(c: Rejection, enhanced: Bool) {
        let (sh, mark) = VerdictTests.awaiting(caps: enhanced ? Harness.defaultCaps : VerdictTests.noEnhancedCaps)
        let v = sh.verdict(c.verdict, scan: c.summary)
        #expect(v.client == c.reply(enhanced: enhanced))
        #expect(v.toServer.isEmpty, "no dot, no QUIT, nothing")
        #expect(v.closeServer)
        #expect(!v.closeClient)
        #expect(sh.server(since: mark) == VerdictTests.body)
        #expect(v.transactions == [VerdictTests.transaction(scan: c.summary, result: nil, abort: c.why)])
        #expect(v.takeovers == [c.takeover])
        #expect(sh.m.takeoverReason == c.takeover)
        #expect(sh.verdict(.deliver).raw.first == MachineOutput(), "a later verdict cannot send the dot")

        let ok = enhanced ? "250 2.0.0 OK\r\n" : "250 OK\r\n"
        #expect(sh.client("RSET\r\n").client == ok)
        #expect(sh.client("NOOP\r\n").client == ok)
        let e = enhanced ? " 4.3.0" : ""
        #expect(sh.client("MAIL FROM:<c@x.test>\r\n").client == "451\(e) \(PN): \(c.takeover)\r\n")
        let e5 = enhanced ? " 5.5.1" : ""
        #expect(sh.client("RCPT TO:<d@x.test>\r\n").client == "503\(e5) \(PN): \(c.takeover)\r\n")
        #expect(sh.client("DATA\r\n").client == "503\(e5) \(PN): \(c.takeover)\r\n")
        let q = sh.client("QUIT\r\n")
        #expect(q.client == "221\(enhanced ? " 2.0.0" : "") \(PN): closing connection\r\n")
        #expect(q.closeClient)
        #expect(sh.m.closeReason == "quit")
        #expect(sh.all.transactions.count == 1, "no transaction opened after the refusal")
        #expect(sh.server(since: mark) == VerdictTests.body, "the upstream never got another byte")
    }

    @Test(arguments: rejections)
    func afterHELONoEnhancedCodes(c: Rejection) {
        let sh = ScanHarness()
        sh.h.openHELO()
        sh.startMessage()
        sh.client("x\r\n.\r\n")
        #expect(sh.verdict(c.verdict, scan: c.summary).client == c.reply(enhanced: false))
        #expect(sh.client("MAIL FROM:<c@x.test>\r\n").client == "451 \(PN): \(c.takeover)\r\n")
    }

    @Test(arguments: rejections)
    func pipelinedSecondTransactionGets451Not250(c: Rejection) {
        let (sh, mark) = VerdictTests.awaiting(after: "MAIL FROM:<c@x.test>\r\nRCPT TO:<d@x.test>\r\nDATA\r\n")
        let v = sh.verdict(c.verdict, scan: c.summary)
        #expect(v.client == c.reply(enhanced: true)
            + "451 4.3.0 \(PN): \(c.takeover)\r\n"
            + "503 5.5.1 \(PN): \(c.takeover)\r\n"
            + "503 5.5.1 \(PN): \(c.takeover)\r\n")
        #expect(v.toServer.isEmpty)
        #expect(!v.client.contains("250"))
        #expect(sh.server(since: mark) == VerdictTests.body)
        #expect(sh.starts == 1, "no second message began")
    }

    @Test(arguments: rejections)
    func pipelinedQuitAfterTheRefusedMessage(c: Rejection) {
        let (sh, _) = VerdictTests.awaiting(after: "QUIT\r\n")
        let v = sh.verdict(c.verdict, scan: c.summary)
        #expect(v.client == c.reply(enhanced: true) + "221 2.0.0 \(PN): closing connection\r\n")
        #expect(v.toServer.isEmpty)
        #expect(v.closeClient && v.closeServer)
        #expect(sh.m.closeReason == "quit")
    }

    @Test func secondMessageRefusedAfterAFirstDelivered() {
        let (sh, mark) = VerdictTests.awaiting(after: "MAIL FROM:<c@x.test>\r\nRCPT TO:<d@x.test>\r\nDATA\r\n")
        #expect(sh.verdict(.deliver).server == ".\r\nMAIL FROM:<c@x.test>\r\nRCPT TO:<d@x.test>\r\nDATA\r\n")
        sh.server("250 2.0.0 queued 1\r\n250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 go\r\n")
        #expect(sh.client("EICAR\r\n.\r\n").server == "EICAR\r\n")
        let v = sh.verdict(.virus("Eicar"), scan: ScanSummary(result: .virus, virus: "Eicar"))
        #expect(v.client == "550 5.7.1 \(PN): virus found: Eicar\r\n")
        #expect(v.toServer.isEmpty && v.closeServer)
        #expect(v.transactions.map(\.number) == [2])
        #expect(v.transactions.first?.abortReason == "virus")
        #expect(sh.server(since: mark) == VerdictTests.body
            + ".\r\nMAIL FROM:<c@x.test>\r\nRCPT TO:<d@x.test>\r\nDATA\r\nEICAR\r\n")
        #expect(sh.all.transactions.map(\.resultCode) == [250, nil])
    }

    // MARK: the upstream or the client moving while the verdict is awaited

    @Test func serverReplyWhileAwaitingIsAProtocolError() {
        let (sh, mark) = VerdictTests.awaiting(after: "MAIL FROM:<c@x.test>\r\n")
        let r = sh.server("250 2.0.0 queued\r\n")
        #expect(r.client == "451 4.4.2 \(PN): bad reply from destination\r\n451 4.3.0 \(PN): bad reply from destination\r\n",
                "the message's 451, then the held MAIL's")
        #expect(!r.client.contains("250"))
        #expect(r.closeServer)
        #expect(r.toServer.isEmpty)
        #expect(r.transactions.first?.resultCode == nil)
        #expect(r.transactions.first?.abortReason == "server_protocol_error")
        #expect(r.takeovers == ["bad reply from destination"])
        #expect(sh.verdict(.deliver, scan: ScanSummary(result: .clean)).raw.first == MachineOutput(),
                "a late verdict does nothing")
        #expect(sh.server(since: mark) == VerdictTests.body, "the dot was never sent")
        let q = sh.client("QUIT\r\n")
        #expect(q.client == "221 2.0.0 \(PN): closing connection\r\n")
        #expect(q.closeClient)
    }

    @Test func serverReplyInPiecesWhileAwaiting() {
        let (sh, mark) = VerdictTests.awaiting()
        let reply = "250-2.0.0 a\r\n250 2.0.0 queued\r\n"
        var merged = Step()
        for c in reply { merged.merge(sh.server(String(c))) }
        #expect(merged.client == "451 4.4.2 \(PN): bad reply from destination\r\n")
        #expect(merged.closeServer)
        #expect(sh.verdict(.deliver).raw.first == MachineOutput())
        #expect(sh.server(since: mark) == VerdictTests.body)
    }

    @Test func upstreamClosedWhileAwaiting() {
        let (sh, mark) = VerdictTests.awaiting()
        let c = sh.serverClosedNow()
        #expect(c.client == "451 4.4.2 \(PN): connection to destination lost\r\n")
        #expect(!c.client.contains("250"))
        #expect(c.toServer.isEmpty)
        #expect(c.transactions.first?.abortReason == "server_closed")
        #expect(sh.verdict(.deliver).raw.first == MachineOutput())
        #expect(sh.verdict(.virus("X")).raw.first == MachineOutput())
        #expect(sh.server(since: mark) == VerdictTests.body)
        #expect(sh.client("MAIL FROM:<c@x.test>\r\n").client == "451 4.3.0 \(PN): connection to destination lost\r\n")
    }

    @Test func timeoutWhileAwaitingNeverSendsTheDot() {
        let (sh, mark) = VerdictTests.awaiting()
        let t = sh.timedOut()
        #expect(t.client.hasPrefix("451 4.4.2 "))
        #expect(t.toServer.isEmpty)
        #expect(t.closeServer)
        #expect(sh.verdict(.deliver).raw.first == MachineOutput())
        #expect(sh.server(since: mark) == VerdictTests.body)
    }

    @Test func shutdownWhileAwaitingSendsNothingMoreUpstream() {
        let (sh, mark) = VerdictTests.awaiting()
        let s = sh.shutdown()
        #expect(s.client == "421 4.3.2 \(PN): shutting down\r\n")
        #expect(s.closeServer && s.closeClient)
        #expect(sh.verdict(.deliver).raw.first == MachineOutput())
        #expect(sh.server(since: mark) == VerdictTests.body,
                "the MTA is still reading the message: a QUIT now would be message text")
    }

    @Test func clientGoneWhileAwaitingThenDelivered() {
        let (sh, mark) = VerdictTests.awaiting()
        let c = sh.clientClosedNow()
        #expect(c.raw.first == MachineOutput(), "the message may still be delivered: wait for the verdict")
        let scan = ScanSummary(result: .clean)
        let v = sh.verdict(.deliver, scan: scan)
        #expect(v.server == ".\r\n")
        #expect(!v.closeServer && !v.closeClient)
        let r = sh.server("250 2.0.0 queued\r\n")
        #expect(r.client == "250 2.0.0 queued\r\n", "relayed: the client only half-closed")
        #expect(r.server == "QUIT\r\n")
        #expect(r.closeClient && r.closeServer)
        #expect(r.transactions == [VerdictTests.transaction(scan: scan, result: 250, abort: nil)])
        #expect(sh.m.closeReason == "client_closed")
        #expect(sh.server(since: mark) == VerdictTests.body + ".\r\nQUIT\r\n")
    }

    @Test(arguments: rejections)
    func clientGoneWhileAwaitingThenRefused(c: Rejection) {
        let (sh, mark) = VerdictTests.awaiting()
        sh.clientClosedNow()
        let v = sh.verdict(c.verdict, scan: c.summary)
        #expect(v.client == c.reply(enhanced: true))
        #expect(v.toServer.isEmpty)
        #expect(v.closeServer && v.closeClient)
        #expect(v.transactions == [VerdictTests.transaction(scan: c.summary, result: nil, abort: c.why)])
        #expect(sh.m.closeReason == "client_closed")
        #expect(sh.server(since: mark) == VerdictTests.body)
    }

    @Test func clientInputWhileAwaitingIsHeld() {
        let (sh, _) = VerdictTests.awaiting()
        let s = sh.client("NOOP\r\nRSET\r\n")
        #expect(s.toServer.isEmpty && s.toClient.isEmpty)
        #expect(sh.verdict(.deliver).server == ".\r\nNOOP\r\nRSET\r\n")
        #expect(sh.server("250 2.0.0 queued\r\n250 2.0.0 Ok\r\n250 2.0.0 Ok\r\n").client
            == "250 2.0.0 queued\r\n250 2.0.0 Ok\r\n250 2.0.0 Ok\r\n")
    }

    @Test func clientFloodWhileAwaitingPausesAndResumes() {
        let sh = ScanHarness()
        sh.openInData()
        sh.client("x\r\n.\r\n")
        // 100 commands of 700 bytes: more than the 64 KiB hold limit, fewer than pipeline_size.
        let line = "NOOP " + repeated("n", 693) + "\r\n"
        let flood = repeated(line, 100)
        let s = sh.client(flood)
        #expect(s.pauseClient, "held input is bounded")
        #expect(s.toServer.isEmpty)
        let v = sh.verdict(.deliver)
        #expect(v.resumeClient)
        #expect(v.server == ".\r\n" + flood)
    }
}
