import Testing
@testable import SMTPGateCore

@Suite("Command relay and PIPELINING")
struct PipeliningTests {
    @Test func greetingIsRelayedVerbatim() {
        let h = Harness()
        let s = h.server("220-mx.test ESMTP\r\n220 second line\r\n")
        #expect(s.client == "220-mx.test ESMTP\r\n220 second line\r\n")
        #expect(s.toServer.isEmpty)
        #expect(!s.closeClient && !s.closeServer)
        #expect(h.m.phase == .relay)
    }

    @Test(arguments: [
        ("helo x", Verb.helo), ("EHLO x", .ehlo), ("eHlO", .ehlo), ("mail from:<a@b>", .mail),
        ("Mail FROM:<>", .mail), ("rcpt to:<a@b>", .rcpt), ("data", .data), ("DaTa", .data),
        ("bdat 10 last", .bdat), ("rset", .rset), ("noop", .noop), ("qUiT", .quit), ("auth plain", .auth),
        ("starttls", .starttls), ("StartTLS", .starttls), ("xexch50 1 2", .xexch50), ("HELO\tx", .helo),
        ("QUIT\r\n", .quit), ("DATAX", .other), ("STARTTLSX", .other), ("QUI", .other), ("", .other),
        ("VRFY x", .other), (" QUIT", .other),
    ])
    func verbParsing(line: String, verb: Verb) {
        #expect(Verb.parse(b(line)) == verb)
    }

    @Test(arguments: ["data", "Data", "DATA", "dAtA"])
    func dataVerbIsCaseInsensitive(verb: String) {
        let h = Harness()
        h.open()
        h.client("MAIL FROM:<a@x.test>\r\n")
        h.server("250 2.1.0 Ok\r\n")
        // DATA is a barrier: what follows it in the same packet waits for the 354.
        let s = h.client("\(verb)\r\nbody line\r\n")
        #expect(s.server == "\(verb)\r\n")
        let r = h.server("354 go ahead\r\n")
        #expect(r.client == "354 go ahead\r\n")
        #expect(r.server == "body line\r\n")
    }

    @Test(arguments: ["bdat 3 last\r\nabc", "BdAt 3 LAST\r\nabc"])
    func bdatVerbIsCaseInsensitive(line: String) {
        let h = Harness()
        h.open()
        let s = h.client(line)
        #expect(s.client == "502 5.5.1 \(PN): BDAT not supported\r\n")
        #expect(s.toServer.isEmpty)
    }

    @Test(arguments: ["starttls\r\n", "StartTls\r\n", "STARTTLS\r\n"])
    func forbiddenStartTLSIsCaseInsensitive(line: String) {
        let h = Harness(forbidStartTLS: true)
        h.open()
        let s = h.client(line)
        #expect(s.client == "502 5.5.1 \(PN): STARTTLS not permitted\r\n")
        #expect(s.toServer.isEmpty)
    }

    @Test func lowercaseMailAndRcptAreTracked() {
        let h = Harness()
        h.open()
        h.client("mail from:<lower@x.test>\r\nrcpt to:<r@x.test>\r\nrset\r\n")
        let s = h.server("250 ok\r\n250 ok\r\n250 ok\r\n")
        #expect(s.transactions.count == 1)
        #expect(s.transactions.first?.mailFrom == "<lower@x.test>")
        #expect(s.transactions.first?.recipients == [LogRecord.Recipient(address: "<r@x.test>", code: 250)])
        #expect(s.transactions.first?.abortReason == "rset")
    }

    @Test func commandFedOneByteAtATimeIsForwardedWhole() {
        let h = Harness()
        h.server(Harness.greeting)
        let line = b("EHLO client.test\r\n")
        for (i, byte) in line.enumerated() {
            let s = h.client(bytes: [byte])
            if i < line.count - 1 {
                #expect(s.toServer.isEmpty, "nothing is forwarded before the line is complete (byte \(i))")
            } else {
                #expect(s.server == "EHLO client.test\r\n")
            }
        }
        let r = h.serverBytewise(Harness.ehloReply(["PIPELINING", "ENHANCEDSTATUSCODES"]))
        #expect(r.client == Harness.ehloReply(["PIPELINING", "ENHANCEDSTATUSCODES"]))
    }

    @Test func wholeSessionByteAtATime() {
        let h = Harness()
        h.serverBytewise(Harness.greeting)
        h.clientBytewise("EHLO client.test\r\n")
        h.serverBytewise(Harness.ehloReply(["PIPELINING", "ENHANCEDSTATUSCODES"]))
        h.clientBytewise("MAIL FROM:<a@x.test>\r\nRCPT TO:<b@x.test>\r\nDATA\r\n")
        h.serverBytewise("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 go\r\n")
        h.clientBytewise("Subject: bytes\r\n\r\nhi\r\n.\r\nQUIT\r\n")
        h.serverBytewise("250 2.0.0 queued\r\n221 2.0.0 bye\r\n")
        #expect(h.all.server == "EHLO client.test\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@x.test>\r\nDATA\r\n"
            + "Subject: bytes\r\n\r\nhi\r\n.\r\nQUIT\r\n")
        #expect(h.all.client == Harness.greeting + Harness.ehloReply(["PIPELINING", "ENHANCEDSTATUSCODES"])
            + "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 go\r\n250 2.0.0 queued\r\n221 2.0.0 bye\r\n")
        #expect(h.all.transactions.count == 1)
        #expect(h.all.transactions.first?.resultCode == 250)
        #expect(h.all.transactions.first?.size == b("Subject: bytes\r\n\r\nhi\r\n").count)
        #expect(h.m.closeReason == "quit")
        #expect(h.m.closedBy == .client)
    }

    @Test func manyCommandsInOnePacketAndRepliesInOnePacket() {
        let h = Harness()
        h.open()
        let cmds = "MAIL FROM:<a@x.test>\r\nRCPT TO:<b@x.test>\r\nRCPT TO:<c@x.test>\r\nRCPT TO:<d@x.test>\r\nDATA\r\n"
        let s = h.client(cmds)
        #expect(s.server == cmds)
        #expect(s.toClient.isEmpty)
        let replies = "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n550 5.1.1 <c@x.test>: unknown\r\n250 2.1.5 Ok\r\n354 go\r\n"
        let r = h.server(replies)
        #expect(r.client == replies)
    }

    @Test func pipelinedRepliesSplitAnywhereStayInOrder() {
        let parts = ["250 2.1.0 Ok\r\n", "250-2.1.5 first\r\n250 2.1.5 Ok\r\n", "250 2.0.0 Ok\r\n"]
        let replies = parts.joined()
        let bytes = b(replies)
        var completeEnds: [Int] = []
        for p in parts { completeEnds.append((completeEnds.last ?? 0) + b(p).count) }
        for cut in 0...bytes.count {
            let h = Harness()
            h.open()
            h.client("MAIL FROM:<a@x.test>\r\nRCPT TO:<b@x.test>\r\nNOOP\r\n")
            let first = h.server(bytes: Array(bytes[..<cut]))
            let second = h.server(bytes: Array(bytes[cut...]))
            #expect(first.client + second.client == replies, "cut at \(cut)")
            // A reply reaches the client only when it is complete.
            let expectedFirst = completeEnds.filter { $0 <= cut }.max() ?? 0
            #expect(first.toClient.count == expectedFirst, "cut at \(cut)")
        }
    }

    @Test func multiLineReplySplitMidLineAtEveryBoundary() {
        let reply = "250-mx.test Hello\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250 HELP\r\n"
        let bytes = b(reply)
        for cut in 0..<bytes.count {
            let h = Harness()
            h.server(Harness.greeting)
            h.client("EHLO client.test\r\n")
            let first = h.server(bytes: Array(bytes[..<cut]))
            #expect(first.toClient.isEmpty, "an incomplete multi-line reply is not passed on (cut \(cut))")
            let second = h.server(bytes: Array(bytes[cut...]))
            #expect(second.client == reply, "cut \(cut)")
        }
    }

    @Test func bareLFReplyLinesAreAccepted() {
        let h = Harness()
        h.server("220 mx.test\n")
        h.client("NOOP\r\n")
        let s = h.server("250-a\n250 b\n")
        #expect(s.client == "250-a\n250 b\n")
    }

    @Test func bdatLocalReplyWaitsForEarlierServerReplies() {
        let h = Harness()
        h.open()
        let s = h.client("MAIL FROM:<a@x.test>\r\nBDAT 4 LAST\r\nabcdRCPT TO:<b@x.test>\r\n")
        #expect(s.server == "MAIL FROM:<a@x.test>\r\nRCPT TO:<b@x.test>\r\n")
        #expect(s.toClient.isEmpty, "the 502 must not overtake the reply to MAIL")
        let r1 = h.server("250 2.1.0 Ok\r\n")
        #expect(r1.client == "250 2.1.0 Ok\r\n502 5.5.1 \(PN): BDAT not supported\r\n")
        let r2 = h.server("250 2.1.5 Ok\r\n")
        #expect(r2.client == "250 2.1.5 Ok\r\n")
    }

    @Test func forbiddenStartTLSReplyInPipelinedOrder() {
        let h = Harness(forbidStartTLS: true)
        h.open()
        let s = h.client("NOOP\r\nSTARTTLS\r\nNOOP\r\n")
        #expect(s.server == "NOOP\r\nNOOP\r\n")
        #expect(s.toClient.isEmpty)
        let r = h.server("250 2.0.0 one\r\n250 2.0.0 two\r\n")
        #expect(r.client == "250 2.0.0 one\r\n502 5.5.1 \(PN): STARTTLS not permitted\r\n250 2.0.0 two\r\n")
    }

    @Test func severalLocalRepliesBetweenServerReplies() {
        let h = Harness(forbidStartTLS: true)
        h.open()
        let s = h.client("NOOP\r\nSTARTTLS\r\nBDAT 0 LAST\r\nXEXCH50 1 2\r\nNOOP\r\nBDAT 1\r\nx")
        #expect(s.server == "NOOP\r\nNOOP\r\n")
        let r = h.server("250 2.0.0 one\r\n")
        #expect(r.client == "250 2.0.0 one\r\n502 5.5.1 \(PN): STARTTLS not permitted\r\n"
            + "502 5.5.1 \(PN): BDAT not supported\r\n502 5.5.1 \(PN): XEXCH50 not supported\r\n")
        let r2 = h.server("250 2.0.0 two\r\n")
        #expect(r2.client == "250 2.0.0 two\r\n502 5.5.1 \(PN): BDAT not supported\r\n")
    }

    @Test func localReplyIsImmediateWhenNothingIsPending() {
        let h = Harness()
        h.open()
        let s = h.client("BDAT 0 LAST\r\n")
        #expect(s.client == "502 5.5.1 \(PN): BDAT not supported\r\n")
        #expect(s.toServer.isEmpty)
        let x = h.client("XEXCH50 12 2\r\n")
        #expect(x.client == "502 5.5.1 \(PN): XEXCH50 not supported\r\n")
        #expect(x.toServer.isEmpty)
    }

    @Test func unknownCommandsAreRelayed() {
        let h = Harness()
        h.open()
        let s = h.client("VRFY postmaster\r\nEXPN list\r\nHELP\r\n")
        #expect(s.server == "VRFY postmaster\r\nEXPN list\r\nHELP\r\n")
        let r = h.server("252 2.0.0 maybe\r\n502 5.5.1 no\r\n214 2.0.0 help\r\n")
        #expect(r.client == "252 2.0.0 maybe\r\n502 5.5.1 no\r\n214 2.0.0 help\r\n")
    }

    @Test func pipelineAtExactlyTheLimitIsNotAnOverflow() {
        let h = Harness(pipelineSize: 3)
        h.open()
        let s = h.client("NOOP\r\nNOOP\r\nNOOP\r\n")
        #expect(s.server == "NOOP\r\nNOOP\r\nNOOP\r\n")
        #expect(s.takeovers.isEmpty)
        #expect(h.m.phase == .relay)
        let r = h.server("250 a\r\n250 b\r\n250 c\r\n")
        #expect(r.client == "250 a\r\n250 b\r\n250 c\r\n")
        // With the replies in, the window is free again.
        let s2 = h.client("NOOP\r\nNOOP\r\nNOOP\r\n")
        #expect(s2.server == "NOOP\r\nNOOP\r\nNOOP\r\n")
        #expect(h.m.phase == .relay)
    }
}
