#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import SMTPGateCore

@Suite("Descriptor budget: max_connections against the open-files limit")
struct DescriptorBudgetTests {
    func config(maxConnections: Int, scans: Bool = false, mode: Config.Mode = .fixed) -> Config {
        var c = Config()
        c.maxConnections = maxConnections
        c.mode = mode
        if scans { c.antivirusType = .clamd }
        return c
    }

    @Test func twoDescriptorsASessionOnTopOfWhatTheDaemonHolds() {
        // 20 held at start, 8 for moments like a reload: 64 - 28 leaves room for 18 sessions.
        let short = DescriptorBudget.shortfall(config(maxConnections: 64), maxScans: 32, limit: 64, inUse: 20, loops: 2)
        #expect(short == DescriptorBudget(maxConnections: 64, limit: 64, needed: 28 + 128, fits: 18))
        #expect(DescriptorBudget.shortfall(config(maxConnections: 18), maxScans: 32, limit: 64, inUse: 20, loops: 2) == nil)
        #expect(DescriptorBudget.shortfall(config(maxConnections: 19), maxScans: 32, limit: 64, inUse: 20, loops: 2)?.needed == 66)
    }

    @Test func scanningAddsTheSpoolFileAndTwoForEachRunningScan() {
        let short = DescriptorBudget.shortfall(config(maxConnections: 100, scans: true), maxScans: 4, limit: 200,
                                               inUse: 20, loops: 2)
        // 20 + 8 + 4 scans × 2 = 36 fixed, 3 a session.
        #expect(short == DescriptorBudget(maxConnections: 100, limit: 200, needed: 36 + 300, fits: 54))
    }

    @Test func remoteUDPAddsAHelperSocketPerEventLoop() {
        let short = DescriptorBudget.shortfall(config(maxConnections: 64, mode: .remoteUDP), maxScans: 32, limit: 64,
                                               inUse: 20, loops: 4)
        #expect(short?.needed == 20 + 8 + 4 + 128)
        #expect(short?.fits == 16)
    }

    @Test func noLimitToCheckAndNoRoomAtAll() {
        #expect(DescriptorBudget.shortfall(config(maxConnections: 0), maxScans: 32, limit: 16, inUse: 20, loops: 2) == nil)
        #expect(DescriptorBudget.shortfall(config(maxConnections: 10), maxScans: 32, limit: 16, inUse: 20, loops: 2)?.fits == 0)
    }

    @Test func logLines() {
        let b = DescriptorBudget(maxConnections: 500, limit: 64, needed: 1028, fits: 18)
        #expect(ListenerLog.descriptorLimit(b).description == "descriptor_limit fits=18 max_connections=500 needed=1028 nofile=64")
        #expect(ListenerLog.descriptorLimit(b).level == .warning)
        let r = ListenerLog.acceptFailed(listener: "main", AcceptFailures.Report(errno: EMFILE, failed: 7, refused: 5))
        #expect(r.description == "accept_failed error=\"Too many open files\" failed=7 listener=main refused=5")
        #expect(r.level == .warning)
        #expect(LogFormat.json.render(r, timestamp: "T", pid: 1)
            == #"{"ts":"T","level":"warning","event":"accept_failed","error":"Too many open files","failed":7,"listener":"main","refused":5}"#)
    }
}
