import Testing
@testable import SMTPGateCore

/// The per-command decision point: what the policy says at HELO/MAIL/RCPT/DATA and the end of a message,
/// and that its replies keep pipeline order whether it answers at once or later.
@Suite("Policy decisions at commands")
struct PolicyDecisionTests {
    static let limited = PolicyReply(code: 451, enhanced: "4.7.1", text: "rate limit: 3 recipients in 60 s (limit 3)",
                                     why: .rateLimit)
    static let locked = PolicyReply(code: 451, enhanced: "4.7.1", text: "locked", why: .locked)

    /// A policy that refuses the RCPTs named, and records every point it was asked at.
    final class Script {
        var asked: [PolicyPoint] = []
        var answers: [PolicyPoint: PolicyDecision] = [:]
        func decide(_ p: PolicyPoint) -> PolicyDecision {
            asked.append(p)
            return answers[p] ?? .relay
        }
    }

    func harness(_ script: Script, endOfData: Bool = false) -> Harness {
        let h = Harness { $0.decideAtEndOfData = endOfData }
        h.m.policy = { p, _ in script.decide(p) }
        return h
    }

    @Test func aRefusedRcptAmongPipelinedOnesKeepsReplyOrder() {
        let script = Script()
        script.answers[.rcpt(to: "<b@x.test>")] = .reply(Self.limited, then: .carryOn)
        let h = harness(script)
        h.open()
        let sent = h.client("MAIL FROM:<a@x.test>\r\nRCPT TO:<a1@x.test>\r\nRCPT TO:<b@x.test>\r\nRCPT TO:<c@x.test>\r\n")
        #expect(sent.server == "MAIL FROM:<a@x.test>\r\nRCPT TO:<a1@x.test>\r\nRCPT TO:<c@x.test>\r\n",
                "the refused RCPT never reaches the MTA")
        #expect(sent.client.isEmpty, "the proxy's reply waits for the replies before it")
        let r = h.server("250 2.1.0 ok\r\n250 2.1.5 a1\r\n250 2.1.5 c\r\n")
        #expect(r.client == "250 2.1.0 ok\r\n250 2.1.5 a1\r\n451 4.7.1 \(PN): rate limit: 3 recipients in 60 s (limit 3)\r\n250 2.1.5 c\r\n")
        #expect(script.asked == [.hello(name: "client.test"), .mail(from: "<a@x.test>"), .rcpt(to: "<a1@x.test>"),
                                 .rcpt(to: "<b@x.test>"), .rcpt(to: "<c@x.test>")])
    }

    @Test func anAskedCommandHoldsItAndEverythingAfterItUntilTheAnswer() {
        let script = Script()
        script.answers[.mail(from: "<a@x.test>")] = .ask
        let h = harness(script)
        h.open()
        let sent = h.client("MAIL FROM:<a@x.test>\r\nRCPT TO:<b@x.test>\r\n")
        #expect(sent.server.isEmpty, "nothing goes on while the policy thinks")
        #expect(sent.questions == [.mail(from: "<a@x.test>")])
        let relayed = h.answer(.relay)
        #expect(relayed.server == "MAIL FROM:<a@x.test>\r\nRCPT TO:<b@x.test>\r\n", "the held RCPT follows its MAIL")
        let r = h.server("250 ok\r\n250 ok\r\n")
        #expect(r.client == "250 ok\r\n250 ok\r\n")
    }

    @Test func anAskedCommandRefusedLaterAnswersInOrder() {
        let script = Script()
        script.answers[.rcpt(to: "<b@x.test>")] = .ask
        let h = harness(script)
        h.open()
        h.client("MAIL FROM:<a@x.test>\r\nRCPT TO:<b@x.test>\r\nRCPT TO:<c@x.test>\r\n")
        #expect(h.all.server.hasSuffix("MAIL FROM:<a@x.test>\r\n"))
        let refused = h.answer(.reply(Self.limited, then: .carryOn))
        #expect(refused.server == "RCPT TO:<c@x.test>\r\n")
        #expect(refused.client.isEmpty, "MAIL's reply is still owed first")
        let r = h.server("250 mail\r\n250 c\r\n")
        #expect(r.client == "250 mail\r\n451 4.7.1 \(PN): rate limit: 3 recipients in 60 s (limit 3)\r\n250 c\r\n")
    }

    @Test func prependedHeadersGoAtTheTopOfThisTransactionsMessageOnly() {
        let script = Script()
        script.answers[.rcpt(to: "<b@x.test>")] = .prepend(["X-Greylist: delayed 2 seconds", "Bad: a\r\nInjected: yes", ""])
        script.answers[.rcpt(to: "<b2@x.test>")] = .prepend(["X-Greylist: delayed 2 seconds"])
        let h = harness(script)
        h.open()
        h.client("MAIL FROM:<a@x.test>\r\nRCPT TO:<b@x.test>\r\nRCPT TO:<b2@x.test>\r\nDATA\r\n")
        let r = h.server("250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n")
        #expect(r.server == "X-Greylist: delayed 2 seconds\r\n", "a header with CR or LF in it, or empty, is dropped; one asked twice is added once")
        h.client("Subject: t\r\n\r\nbody\r\n.\r\n")
        h.server("250 queued\r\n")
        h.client("MAIL FROM:<a@x.test>\r\nRCPT TO:<c@x.test>\r\nDATA\r\n")
        #expect(h.server("250 ok\r\n250 ok\r\n354 go\r\n").server.isEmpty, "the next message gets none")
    }

    @Test func anAnswerNobodyWaitsForChangesNothing() {
        let h = harness(Script())
        h.open()
        let r = h.answer(.reply(Self.limited, then: .close))
        #expect(r.client.isEmpty && r.server.isEmpty && !r.closeClient)
    }

    @Test func takeoverAfterAPolicyReplyQuitsUpstreamAndAnswersAlone() {
        let script = Script()
        script.answers[.mail(from: "<a@x.test>")] = .reply(Self.locked, then: .takeover("client locked"))
        let h = harness(script)
        h.open()
        let r = h.client("MAIL FROM:<a@x.test>\r\n")
        #expect(r.server == "QUIT\r\n")
        #expect(r.client == "451 4.7.1 \(PN): locked\r\n")
        #expect(r.takeovers == ["client locked"])
        h.server("221 bye\r\n")
        #expect(h.client("RCPT TO:<b@x.test>\r\n").client.hasPrefix("503 5.5.1"), "the takeover answers from now on")
    }

    @Test func theEndOfAMessageIsDecidedBeforeTheDotGoesOn() {
        let script = Script()
        let h = harness(script, endOfData: true)
        h.openInData()
        let body = h.client("Subject: x\r\n\r\nhi\r\n.\r\n")
        #expect(script.asked.last == .endOfData(size: 18))
        #expect(body.server.hasSuffix("hi\r\n.\r\n"), "relayed at once: the dot follows its body")
    }

    @Test func aClientLockedDuringItsMessageGets451AndTheMTANeverSeesTheDot() {
        let script = Script()
        let h = harness(script, endOfData: true)
        h.openInData()
        script.answers[.endOfData(size: 4)] = .reply(Self.locked, then: .takeover("client locked"))
        let r = h.client("hi\r\n.\r\n")
        #expect(!h.all.server.hasSuffix(".\r\n"))
        #expect(r.closeServer, "closing the upstream before the dot aborts its transaction")
        #expect(r.client == "451 4.7.1 \(PN): locked\r\n")
        #expect(r.transactions.first?.abort == .locked)
        #expect(h.client("QUIT\r\n").client.hasPrefix("221"))
    }

    @Test func anAskedEndOfDataWaitsThenDelivers() {
        let script = Script()
        let h = harness(script, endOfData: true)
        h.openInData()
        script.answers[.endOfData(size: 4)] = .ask
        let r = h.client("hi\r\n.\r\nQUIT\r\n")
        #expect(r.questions == [.endOfData(size: 4)])
        #expect(!h.all.server.contains("QUIT"), "the next command waits behind the held dot")
        let go = h.answer(.relay)
        #expect(go.server == ".\r\nQUIT\r\n")
        let done = h.server("250 queued\r\n221 bye\r\n")
        #expect(done.client == "250 queued\r\n221 bye\r\n")
        #expect(done.transactions.first?.resultCode == 250)
    }

    @Test func anAskedCommandGoesBackToTheInputWhenTheUpstreamIsLost() {
        let script = Script()
        script.answers[.rcpt(to: "<b@x.test>")] = .ask
        let h = harness(script)
        h.open()
        h.client("MAIL FROM:<a@x.test>\r\n")
        h.server("250 ok\r\n")
        h.client("RCPT TO:<b@x.test>\r\n")
        let lost = h.serverClosed()
        #expect(lost.client.hasPrefix("451 4.4.2") || lost.client.hasPrefix("503 5.5.1"),
                "the waiting RCPT is answered by the takeover, once: \(lost.client.debugDescription)")
        #expect(lost.client.components(separatedBy: "\r\n").filter { !$0.isEmpty }.count == 1)
        #expect(h.answer(.relay).server.isEmpty, "a late answer is ignored")
    }
}

@Suite("A transaction whose MAIL the proxy refused")
struct RefusedMailTests {
    @Test func pipelinedRcptAndDataAfterARefusedMailAreAnsweredHere() {
        let h = Harness()
        h.m.policy = { p, _ in
            if case .mail = p { return .reply(PolicyDecisionTests.limited, then: .carryOn) }
            return .relay
        }
        h.open()
        let sent = h.client("MAIL FROM:<a@x.test>\r\nRCPT TO:<b@x.test>\r\nDATA\r\n")
        #expect(sent.server.isEmpty, "the MTA has no transaction: nothing of it goes there")
        #expect(sent.client == "451 4.7.1 \(PN): rate limit: 3 recipients in 60 s (limit 3)\r\n"
            + "503 5.5.1 \(PN): no mail transaction (MAIL was refused)\r\n"
            + "503 5.5.1 \(PN): no mail transaction (MAIL was refused)\r\n")
        h.client("RSET\r\n")
        #expect(h.all.server.hasSuffix("RSET\r\n"))
        h.server("250 ok\r\n")
        h.m.policy = nil
        #expect(h.client("MAIL FROM:<a@x.test>\r\nRCPT TO:<b@x.test>\r\n").server == "MAIL FROM:<a@x.test>\r\nRCPT TO:<b@x.test>\r\n",
                "after RSET a new transaction goes through")
    }
}
