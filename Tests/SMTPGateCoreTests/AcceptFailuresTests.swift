#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import SMTPGateCore

@Suite("Accept failures: the spare descriptor, pauses, rate-limited reports")
struct AcceptFailuresTests {
    static let ms: UInt64 = 1_000_000
    static let second: UInt64 = 1_000_000_000

    @Test func causes() {
        #expect(AcceptFailures.Cause(errno: EMFILE) == .descriptors)
        #expect(AcceptFailures.Cause(errno: ENFILE) == .descriptors)
        #expect(AcceptFailures.Cause(errno: ENOBUFS) == .memory)
        #expect(AcceptFailures.Cause(errno: ENOMEM) == .memory)
        #expect(AcceptFailures.Cause(errno: ECONNABORTED) == nil)
        #expect(AcceptFailures.Cause(errno: EBADF) == nil)
    }

    @Test func theSpareMakesRoomForAConnectionWhichIsRefused() {
        var f = AcceptFailures()
        #expect(f.failed(.descriptors, errno: EMFILE, spareHeld: true, acceptedThisTurn: false, now: 0) == .acceptOnSpare)
        // The spare is given up: the connection accepted into its slot is refused.
        #expect(f.accepted(shortage: EMFILE) == true)
        // With the spare back, connections are served.
        #expect(f.accepted(shortage: nil) == false)
        #expect(f.failed(.descriptors, errno: ENFILE, spareHeld: true, acceptedThisTurn: false, now: 1) == .acceptOnSpare)
    }

    @Test func withoutRoomForTheSessionEveryAcceptedConnectionIsRefused() {
        var f = AcceptFailures()
        for code in [EMFILE, EMFILE, ENFILE] { #expect(f.accepted(shortage: code) == true) }
        #expect(f.report(now: 0) == AcceptFailures.Report(errno: ENFILE, failed: 0, refused: 3))
    }

    @Test func withoutTheSpareTheSocketPausesTwiceAsLongEachTimeUpToASecond() {
        var f = AcceptFailures()
        var pauses: [UInt64] = []
        for i in 0..<10 {
            let now = UInt64(i) * 10 * Self.second
            guard case .pause(let until) = f.failed(.descriptors, errno: EMFILE, spareHeld: false,
                                                    acceptedThisTurn: false, now: now) else {
                Issue.record("no pause")
                return
            }
            pauses.append(until - now)
        }
        #expect(pauses == [10, 20, 40, 80, 160, 320, 640, 1000, 1000, 1000].map { $0 * Self.ms })
        // A served connection: the next pause is short again.
        #expect(f.accepted(shortage: nil) == false)
        #expect(f.failed(.descriptors, errno: EMFILE, spareHeld: false, acceptedThisTurn: false, now: 5) == .pause(until: 5 + 10 * Self.ms))
    }

    @Test func aRefusedConnectionDoesNotShortenThePauses() {
        var f = AcceptFailures()
        #expect(f.failed(.descriptors, errno: EMFILE, spareHeld: false, acceptedThisTurn: false, now: 0) == .pause(until: 10 * Self.ms))
        #expect(f.accepted(shortage: EMFILE) == true)
        #expect(f.failed(.descriptors, errno: EMFILE, spareHeld: false, acceptedThisTurn: false, now: 0) == .pause(until: 20 * Self.ms))
    }

    @Test func memoryShortageOnlyPauses() {
        var f = AcceptFailures()
        #expect(f.failed(.memory, errno: ENOBUFS, spareHeld: true, acceptedThisTurn: false, now: 0) == .pause(until: 10 * Self.ms))
        #expect(f.accepted(shortage: nil) == false)
    }

    @Test func aFailureAfterThisTurnsAcceptsIsNoSignOfAWaitingClient() {
        var f = AcceptFailures()
        #expect(f.failed(.descriptors, errno: EMFILE, spareHeld: true, acceptedThisTurn: true, now: 0) == .nothing)
        #expect(f.report(now: 0) == nil)
        #expect(f.reportDue == nil)
    }

    @Test func theFirstFailureIsReportedAtOnceTheRestAtMostOnceASecond() {
        var f = AcceptFailures()
        _ = f.failed(.descriptors, errno: EMFILE, spareHeld: true, acceptedThisTurn: false, now: 5 * Self.second)
        #expect(f.report(now: 5 * Self.second) == AcceptFailures.Report(errno: EMFILE, failed: 1, refused: 0))
        #expect(f.reportDue == nil)
        _ = f.accepted(shortage: EMFILE)
        #expect(f.reportDue == 6 * Self.second)
        #expect(f.report(now: 5 * Self.second + 1) == nil)
        for i in 1...5 {
            let now = 5 * Self.second + UInt64(i) * 100 * Self.ms
            let code = i == 5 ? ENFILE : EMFILE
            _ = f.failed(.descriptors, errno: code, spareHeld: true, acceptedThisTurn: false, now: now)
            _ = f.accepted(shortage: code)
            #expect(f.report(now: now) == nil)
        }
        #expect(f.reportDue == 6 * Self.second)
        #expect(f.report(now: 6 * Self.second) == AcceptFailures.Report(errno: ENFILE, failed: 5, refused: 6))
        #expect(f.reportDue == nil)
        #expect(f.report(now: 9 * Self.second) == nil)
        // Quiet for longer than the interval: the next failure is reported at once.
        _ = f.failed(.memory, errno: ENOMEM, spareHeld: true, acceptedThisTurn: false, now: 9 * Self.second)
        #expect(f.report(now: 9 * Self.second) == AcceptFailures.Report(errno: ENOMEM, failed: 1, refused: 0))
    }

    @Test func whatIsLeftIsReportedWhenTheSocketCloses() {
        var f = AcceptFailures()
        _ = f.failed(.descriptors, errno: EMFILE, spareHeld: true, acceptedThisTurn: false, now: 0)
        _ = f.report(now: 0)
        _ = f.accepted(shortage: EMFILE)
        #expect(f.report(now: 1) == nil)
        #expect(f.finalReport() == AcceptFailures.Report(errno: EMFILE, failed: 0, refused: 1))
        #expect(f.finalReport() == nil)
    }

    @Test func theRefusalReply() {
        var r = ProxyReplies(proxyName: PN)
        #expect(latin1(r.tooManyOpenFiles()) == "421 4.3.2 \(PN): too many open files, try again later\r\n")
        r.enhanced = false
        #expect(latin1(r.tooManyOpenFiles()) == "421 \(PN): too many open files, try again later\r\n")
    }
}
