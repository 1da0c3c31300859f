import Testing
@testable import SMTPGateCore

@Suite("ScanPolicy: what the scanners' reports mean for the message")
struct ScanPolicyTests {
    static let strict = ScanPolicy(spamThreshold: 7, rejectSpam: true, ignoreErrors: false)

    static func clamd(_ r: ScanReport.Result) -> ScanReport { ScanReport(scanner: .clamd, result: r, seconds: 0.01, size: 100) }
    static func spamd(_ r: ScanReport.Result) -> ScanReport { ScanReport(scanner: .spamd, result: r, seconds: 0.2, size: 100) }

    /// The verdict must not depend on which scanner answered first.
    static func verdict(_ p: ScanPolicy, _ reports: [ScanReport],
                        sourceLocation: SourceLocation = #_sourceLocation) -> (MessageVerdict, ScanSummary) {
        let v = p.verdict(reports)
        let r = p.verdict(reports.reversed())
        #expect(v.0 == r.0 && v.1 == r.1, "order changed the verdict", sourceLocation: sourceLocation)
        return v
    }

    @Test func cleanAndLowScoreDeliver() {
        let (v, s) = ScanPolicyTests.verdict(ScanPolicyTests.strict, [ScanPolicyTests.clamd(.clean), ScanPolicyTests.spamd(.score(2.5))])
        #expect(v == .deliver)
        #expect(s == ScanSummary(result: .clean, score: 2.5))
    }

    @Test func cleanAlone() {
        let (v, s) = ScanPolicyTests.verdict(ScanPolicyTests.strict, [ScanPolicyTests.clamd(.clean)])
        #expect(v == .deliver)
        #expect(s == ScanSummary(result: .clean))
    }

    @Test func virusOutranksSpamAndFailure() {
        for other in [ScanReport.Result.score(50), .failed("timed out"), .clean, .skipped("too large")] {
            let (v, s) = ScanPolicyTests.verdict(ScanPolicyTests.strict,
                                                 [ScanPolicyTests.clamd(.virus("Eicar-Test-Signature")), ScanPolicyTests.spamd(other)])
            #expect(v == .virus("Eicar-Test-Signature"), "\(other)")
            #expect(s == ScanSummary(result: .virus, virus: "Eicar-Test-Signature"), "\(other)")
        }
    }

    @Test func virusIsRejectedEvenWithIgnoreErrorsAndSpamDelivered() {
        let lax = ScanPolicy(spamThreshold: 7, rejectSpam: false, ignoreErrors: true)
        let (v, _) = ScanPolicyTests.verdict(lax, [ScanPolicyTests.clamd(.virus("X")), ScanPolicyTests.spamd(.failed("down"))])
        #expect(v == .virus("X"))
    }

    @Test func spamOutranksAFailure() {
        let (v, s) = ScanPolicyTests.verdict(ScanPolicyTests.strict, [ScanPolicyTests.clamd(.failed("connection refused")), ScanPolicyTests.spamd(.score(9.5))])
        #expect(v == .spam(score: 9.5, threshold: 7))
        #expect(s == ScanSummary(result: .spam, score: 9.5))
    }

    @Test(arguments: [(6.9, false), (7.0, true), (7.1, true), (-3, false), (1000, true)])
    func thresholdIsInclusive(score: Double, spam: Bool) {
        #expect(ScanPolicyTests.strict.isSpam(score) == spam)
        let (v, s) = ScanPolicyTests.verdict(ScanPolicyTests.strict, [ScanPolicyTests.spamd(.score(score))])
        #expect(v == (spam ? .spam(score: score, threshold: 7) : .deliver))
        #expect(s == ScanSummary(result: spam ? .spam : .clean, score: score))
    }

    @Test func negativeThreshold() {
        let p = ScanPolicy(spamThreshold: -2, rejectSpam: true, ignoreErrors: false)
        #expect(p.verdict([ScanPolicyTests.spamd(.score(-2))]).0 == .spam(score: -2, threshold: -2))
        #expect(p.verdict([ScanPolicyTests.spamd(.score(-2.5))]).0 == .deliver)
    }

    @Test func spamActionDeliverLetsSpamThroughButLogsIt() {
        let p = ScanPolicy(spamThreshold: 5, rejectSpam: false, ignoreErrors: false)
        let (v, s) = ScanPolicyTests.verdict(p, [ScanPolicyTests.clamd(.clean), ScanPolicyTests.spamd(.score(8))])
        #expect(v == .deliver)
        #expect(s == ScanSummary(result: .spam, score: 8))
    }

    @Test func failureGives451UnlessIgnored() {
        let (v, s) = ScanPolicyTests.verdict(ScanPolicyTests.strict, [ScanPolicyTests.clamd(.failed("timed out")), ScanPolicyTests.spamd(.score(1))])
        #expect(v == .notScanned("clamd: timed out", spool: false))
        #expect(s == ScanSummary(result: .error, score: 1))
        let lax = ScanPolicy(spamThreshold: 7, rejectSpam: true, ignoreErrors: true)
        let (v2, s2) = ScanPolicyTests.verdict(lax, [ScanPolicyTests.clamd(.failed("timed out")), ScanPolicyTests.spamd(.score(1))])
        #expect(v2 == .deliver)
        #expect(s2 == ScanSummary(result: .error, score: 1), "still logged as a failure")
    }

    @Test func spamdFailureNamesSpamd() {
        let (v, s) = ScanPolicyTests.verdict(ScanPolicyTests.strict, [ScanPolicyTests.clamd(.clean), ScanPolicyTests.spamd(.failed("garbage reply"))])
        #expect(v == .notScanned("spamd: garbage reply", spool: false))
        #expect(s == ScanSummary(result: .error))
    }

    @Test func ignoreErrorsStillRejectsSpam() {
        let p = ScanPolicy(spamThreshold: 7, rejectSpam: true, ignoreErrors: true)
        let (v, _) = ScanPolicyTests.verdict(p, [ScanPolicyTests.clamd(.failed("down")), ScanPolicyTests.spamd(.score(30))])
        #expect(v == .spam(score: 30, threshold: 7))
    }

    @Test func allSkippedIsSkipped() {
        let (v, s) = ScanPolicyTests.verdict(ScanPolicyTests.strict,
                                             [ScanPolicyTests.clamd(.skipped("larger than scan_max_size")), ScanPolicyTests.spamd(.skipped("larger than spam_max_size"))])
        #expect(v == .deliver)
        #expect(s == ScanSummary(result: .skipped))
        #expect(ScanPolicyTests.strict.verdict([ScanPolicyTests.spamd(.skipped("big"))]).1 == ScanSummary(result: .skipped))
    }

    @Test func partlySkippedIsJudgedOnTheRest() {
        let cases: [(ScanReport.Result, MessageVerdict, String)] = [
            (.clean, .deliver, "clean"),
            (.virus("V"), .virus("V"), "virus"),
            (.failed("down"), .notScanned("clamd: down", spool: false), "error"),
        ]
        for (clam, verdict, result) in cases {
            let (v, s) = ScanPolicyTests.verdict(ScanPolicyTests.strict, [ScanPolicyTests.clamd(clam), ScanPolicyTests.spamd(.skipped("big"))])
            #expect(v == verdict, "\(clam)")
            #expect(s.result.rawValue == result, "\(clam)")
        }
        let (v, s) = ScanPolicyTests.verdict(ScanPolicyTests.strict, [ScanPolicyTests.clamd(.skipped("big")), ScanPolicyTests.spamd(.score(8))])
        #expect(v == .spam(score: 8, threshold: 7))
        #expect(s == ScanSummary(result: .spam, score: 8))
    }

    @Test func noReportsIsClean() {
        let (v, s) = ScanPolicyTests.strict.verdict([])
        #expect(v == .deliver)
        #expect(s == ScanSummary(result: .clean))
    }

    @Test func fromConfig() {
        var c = Config()
        #expect(ScanPolicy(config: c).rejectSpam == true, "spam_action reject by default")
        #expect(ScanPolicy(config: c).spamThreshold == 7)
        #expect(ScanPolicy(config: c).ignoreErrors == false)
        c.spamAction = .deliver
        c.spamThreshold = 4.5
        c.ignoreErrors = true
        let p = ScanPolicy(config: c)
        #expect(p.rejectSpam == false)
        #expect(p.spamThreshold == 4.5)
        #expect(p.ignoreErrors == true)
    }
}
