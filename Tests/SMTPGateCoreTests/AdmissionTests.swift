import Testing
@testable import SMTPGateCore

/// Both steps at once, as a session whose client is known at accept time goes through them.
extension Admission {
    mutating func admit(host: String, maxConnections: Int, maxPerHost: Int) -> Decision {
        let first = admitConnection(maxConnections: maxConnections)
        guard first == .admit else { return first }
        let second = admitHost(host, maxPerHost: maxPerHost)
        if second != .admit { releaseConnection() }
        return second
    }

    mutating func release(host: String) {
        guard count(host: host) > 0 else { return }
        releaseHost(host)
        releaseConnection()
    }
}

@Suite("Admission: max_connections and max_per_host")
struct AdmissionTests {
    @Test func admitsUpToMaxConnections() {
        var a = Admission()
        #expect(a.admit(host: "192.0.2.1", maxConnections: 2, maxPerHost: 0) == .admit)
        #expect(a.admit(host: "192.0.2.2", maxConnections: 2, maxPerHost: 0) == .admit)
        #expect(a.admit(host: "192.0.2.3", maxConnections: 2, maxPerHost: 0) == .tooManyConnections(limit: 2))
        #expect(a.total == 2)
        a.release(host: "192.0.2.1")
        #expect(a.total == 1)
        #expect(a.admit(host: "192.0.2.3", maxConnections: 2, maxPerHost: 0) == .admit)
    }

    @Test func admitsUpToMaxPerHost() {
        var a = Admission()
        #expect(a.admit(host: "192.0.2.1", maxConnections: 0, maxPerHost: 2) == .admit)
        #expect(a.admit(host: "192.0.2.1", maxConnections: 0, maxPerHost: 2) == .admit)
        #expect(a.admit(host: "192.0.2.1", maxConnections: 0, maxPerHost: 2) == .tooManyFromHost(limit: 2))
        #expect(a.admit(host: "192.0.2.9", maxConnections: 0, maxPerHost: 2) == .admit)
        #expect(a.count(host: "192.0.2.1") == 2)
        #expect(a.count(host: "192.0.2.9") == 1)
        #expect(a.total == 3)
        a.release(host: "192.0.2.1")
        #expect(a.count(host: "192.0.2.1") == 1)
        #expect(a.admit(host: "192.0.2.1", maxConnections: 0, maxPerHost: 2) == .admit)
    }

    @Test func zeroMeansNoLimit() {
        var a = Admission()
        for _ in 0..<1000 {
            #expect(a.admit(host: "::1", maxConnections: 0, maxPerHost: 0) == .admit)
        }
        #expect(a.total == 1000)
        #expect(a.count(host: "::1") == 1000)
    }

    @Test func globalLimitCheckedFirst() {
        var a = Admission()
        _ = a.admit(host: "h", maxConnections: 1, maxPerHost: 1)
        #expect(a.admit(host: "h", maxConnections: 1, maxPerHost: 1) == .tooManyConnections(limit: 1))
    }

    @Test func refusalDoesNotCount() {
        var a = Admission()
        _ = a.admit(host: "h", maxConnections: 5, maxPerHost: 1)
        for _ in 0..<10 { _ = a.admit(host: "h", maxConnections: 5, maxPerHost: 1) }
        #expect(a.total == 1)
        #expect(a.count(host: "h") == 1)
        a.release(host: "h")
        #expect(a.total == 0)
        #expect(a.count(host: "h") == 0)
    }

    @Test func releaseOfUnknownHostIsHarmless() {
        var a = Admission()
        _ = a.admit(host: "h", maxConnections: 0, maxPerHost: 0)
        a.release(host: "other")
        a.release(host: "other")
        #expect(a.total == 1)
        a.release(host: "h")
        a.release(host: "h")
        #expect(a.total == 0)
        #expect(a.count(host: "h") == 0)
    }

    @Test func limitsLoweredBelowCurrentCount() {
        var a = Admission()
        for _ in 0..<5 { _ = a.admit(host: "h", maxConnections: 0, maxPerHost: 0) }
        #expect(a.admit(host: "h", maxConnections: 3, maxPerHost: 0) == .tooManyConnections(limit: 3))
        #expect(a.admit(host: "h", maxConnections: 0, maxPerHost: 3) == .tooManyFromHost(limit: 3))
    }

    @Test func hostIsCountedOnlyOnceKnown() {
        var a = Admission()
        #expect(a.admitConnection(maxConnections: 3) == .admit)
        #expect(a.total == 1)
        #expect(a.count(host: "10.77.1.2") == 0)
        #expect(a.admitHost("10.77.1.2", maxPerHost: 1) == .admit)
        #expect(a.admitConnection(maxConnections: 3) == .admit)
        #expect(a.admitHost("10.77.1.2", maxPerHost: 1) == .tooManyFromHost(limit: 1))
        a.releaseConnection()
        #expect(a.total == 1)
        a.releaseHost("10.77.1.2")
        a.releaseConnection()
        #expect(a.total == 0)
        #expect(a.count(host: "10.77.1.2") == 0)
    }

    @Test func refusalReplies() {
        var r = ProxyReplies(proxyName: PN)
        #expect(latin1(r.refusal(.tooManyConnections(limit: 64))) == "554 5.7.0 \(PN): too many connections (max_connections 64)\r\n")
        r.enhanced = false
        #expect(latin1(r.refusal(.tooManyConnections(limit: 1))) == "554 \(PN): too many connections (max_connections 1)\r\n")
    }

    @Test(arguments: [
        (Refusal.tooManyFromHost(limit: 8), "554 5.7.0 \(PN): too many connections from your host (max_per_host 8)\r\n", "max_per_host"),
        (.connectFailed(destination: "192.0.2.1:25", reason: "connection refused"),
         "421 4.4.1 \(PN): cannot connect to 192.0.2.1:25: connection refused\r\n", "connect_failed"),
        (.lookupFailed(reason: "no answer from 10.77.2.1:114 after 3 tries", clientText: "helper did not answer"), "421 4.4.3 \(PN): cannot find the destination: helper did not answer\r\n", "lookup_failed"),
        (.loop(destination: "10.77.2.10:9199"), "554 5.4.6 \(PN): routing loop: 10.77.2.10:9199 is this proxy\r\n", "loop"),
        (.tooManyConnections(limit: 64), "554 5.7.0 \(PN): too many connections (max_connections 64)\r\n", "max_connections"),
    ])
    func sessionRefusals(refusal: Refusal, reply: String, why: String) {
        var m = SessionMachine(settings: SessionSettings(proxyName: PN, pipelineSize: 16, onTakeoverCmds: 5, forbidStartTLS: false))
        let out = m.refuse(refusal)
        #expect(out.toClient == [.bytes(Array(reply.utf8))])
        #expect(out.toServer.isEmpty)
        #expect(out.closeClient)
        #expect(m.closeReason == why)
        #expect(m.closedBy == .proxy)
        #expect(m.phase == .closed)
    }
}
