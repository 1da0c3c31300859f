import NIOCore
import NIOEmbedded
import Testing
@testable import SMTPGateCore
@testable import SMTPGateProxy

@Suite("Admission pipeline: order, stages, waiting")
struct AdmissionPipelineTests {
    /// Records which checks ran, so a test can tell that a refusal stops the rest.
    final class Trace { var ran: [String] = [] }

    static func check(_ name: String, _ stage: AdmissionStage, _ trace: Trace,
                      _ answer: @escaping () -> AdmissionAnswer) -> AdmissionCheck<String> {
        AdmissionCheck(stage: stage) { _ in
            trace.ran.append(name)
            return answer()
        }
    }

    static func outcome(_ p: AdmissionPipeline<String>, _ stage: AdmissionStage) -> (decided: Bool, refusal: Refusal?) {
        var decided = false
        var refusal: Refusal?
        p.run(stage, "client") {
            decided = true
            refusal = $0
        }
        return (decided, refusal)
    }

    @Test func allPassingAdmitsAtOnce() {
        let t = Trace()
        let p = AdmissionPipeline(checks: [
            Self.check("a", .accepted, t) { .pass }, Self.check("b", .accepted, t) { .pass },
        ])
        let r = Self.outcome(p, .accepted)
        #expect(r.decided && r.refusal == nil)
        #expect(t.ran == ["a", "b"])
    }

    @Test func theFirstRefusalWinsAndLaterChecksDoNotRun() {
        let t = Trace()
        let p = AdmissionPipeline(checks: [
            Self.check("a", .originKnown, t) { .pass },
            Self.check("b", .originKnown, t) { .refuse(.tooManyFromHost(limit: 2)) },
            Self.check("c", .originKnown, t) { .refuse(.loop(destination: "x")) },
        ])
        let r = Self.outcome(p, .originKnown)
        #expect(r.decided && r.refusal == .tooManyFromHost(limit: 2))
        #expect(t.ran == ["a", "b"], "a check after a refusal must not count the session")
    }

    @Test func inWarnModeAPolicyRefusalIsReportedAndTheNextCheckRuns() throws {
        let t = Trace()
        var warned: [Refusal] = []
        let loop = EmbeddedEventLoop()
        let promise = loop.makePromise(of: AdmissionAnswer.self)
        var p = AdmissionPipeline(checks: [
            Self.check("early", .beforeGreeting, t) { .refuse(.earlyTalker(bytes: 3)) },
            Self.check("dns", .beforeGreeting, t) { .wait(promise.futureResult) },
            Self.check("limit", .beforeGreeting, t) { .refuse(.tooManyFromHost(limit: 2)) },
        ])
        p.warn = { _, r in warned.append(r) }
        var decided = false
        var refusal: Refusal?
        p.run(.beforeGreeting, "client") {
            decided = true
            refusal = $0
        }
        #expect(!decided && warned == [.earlyTalker(bytes: 3)])
        let v = DNSBLVerdict(client: "192.0.2.7", score: 1, threshold: 1, zones: ["bl.example"], heaviest: "bl.example", failed: [])
        promise.succeed(.refuse(.dnsblListed(v)))
        #expect(warned == [.earlyTalker(bytes: 3), .dnsblListed(v)])
        #expect(decided && refusal == .tooManyFromHost(limit: 2), "a limit of capacity is enforced in warn mode too")
        #expect(t.ran == ["early", "dns", "limit"])
        try loop.syncShutdownGracefully()
    }

    @Test func onlyTheStagesChecksRun() {
        let t = Trace()
        let p = AdmissionPipeline(checks: [
            Self.check("accept", .accepted, t) { .refuse(.tooManyConnections(limit: 1)) },
            Self.check("origin", .originKnown, t) { .pass },
        ])
        #expect(Self.outcome(p, .originKnown).refusal == nil)
        #expect(t.ran == ["origin"])
        #expect(Self.outcome(p, .accepted).refusal == .tooManyConnections(limit: 1))
    }

    @Test func anAsynchronousCheckHoldsTheDecisionUntilItAnswers() throws {
        let loop = EmbeddedEventLoop()
        let t = Trace()
        let promise = loop.makePromise(of: AdmissionAnswer.self)
        let p = AdmissionPipeline(checks: [
            Self.check("dns", .originKnown, t) { .wait(promise.futureResult) },
            Self.check("after", .originKnown, t) { .refuse(.tooManyFromHost(limit: 8)) },
        ])
        var decided: Refusal?? = .none
        p.run(.originKnown, "client") { decided = .some($0) }
        #expect(decided == nil, "no decision before the asynchronous check answers")
        #expect(t.ran == ["dns"])
        promise.succeed(.pass)
        loop.run()
        #expect(t.ran == ["dns", "after"])
        #expect(decided == .some(.tooManyFromHost(limit: 8)))
        try loop.syncShutdownGracefully()
    }

    @Test func anAsynchronousRefusalIsTheAnswer() throws {
        let loop = EmbeddedEventLoop()
        let t = Trace()
        let p = AdmissionPipeline(checks: [
            Self.check("dns", .originKnown, t) { .wait(loop.makeSucceededFuture(.refuse(.loop(destination: "d")))) },
            Self.check("after", .originKnown, t) { .pass },
        ])
        var decided: Refusal?? = .none
        p.run(.originKnown, "client") { decided = .some($0) }
        loop.run()
        #expect(decided == .some(.loop(destination: "d")))
        #expect(t.ran == ["dns"])
        try loop.syncShutdownGracefully()
    }

    @Test func aFailedAsynchronousCheckPasses() throws {
        struct Down: Error {}
        let loop = EmbeddedEventLoop()
        let t = Trace()
        let p = AdmissionPipeline(checks: [
            Self.check("dns", .originKnown, t) { .wait(loop.makeFailedFuture(Down())) },
            Self.check("after", .originKnown, t) { .pass },
        ])
        var decided: Refusal?? = .none
        p.run(.originKnown, "client") { decided = .some($0) }
        loop.run()
        #expect(decided == .some(nil))
        #expect(t.ran == ["dns", "after"])
        try loop.syncShutdownGracefully()
    }
}
