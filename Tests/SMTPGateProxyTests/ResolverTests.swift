import Foundation
import NIOConcurrencyHelpers
import SMTPGateCore
import Testing
@testable import SMTPGateProxy

/// The resolver against a real dnsmasq on loopback, and against servers that misbehave.
@Suite(.serialized) struct ResolverTests {
    static let records = [
        "--host-record=2.0.0.127.bl.example,127.0.0.2", "--txt-record=2.0.0.127.bl.example,listed: see http://bl.example/",
        "--host-record=v6.example,2001:db8::25", "--txt-record=spf.example,v=spf1 ip4:192.0.2.0/24 -all",
        "--mx-host=mail.example,mx1.mail.example,10", "--mx-host=mail.example,mx2.mail.example,20",
        "--ptr-record=5.0.0.10.in-addr.arpa,host.customer.example",
    ]

    func ask(_ r: Resolver, _ name: String, _ type: DNSType, within seconds: Double = 10) -> DNSAnswer? {
        let got = NIOLockedValueBox<DNSAnswer?>(nil)
        let sem = DispatchSemaphore(value: 0)
        r.lookup(name, type) { a in
            got.withLockedValue { $0 = a }
            sem.signal()
        }
        guard sem.wait(timeout: .now() + seconds) == .success else { return nil }
        return got.withLockedValue { $0 }
    }

    final class Observations: ServiceObserver {
        let seen = NIOLockedValueBox<[ServiceObservation]>([])
        func observe(_ o: ServiceObservation) { seen.withLockedValue { $0.append(o) } }
    }

    /// What the metrics count: every lookup once, with a time only when something was sent.
    @Test func everyLookupIsObservedOnceWithItsResult() throws {
        let dns = try DnsmasqTestServer(records: Self.records)
        defer { dns.stop() }
        let seen = Observations()
        let r = try Resolver(.init(servers: [dns.address], timeout: 5), observer: seen)
        defer { r.shutdown() }
        _ = ask(r, "2.0.0.127.bl.example", .a)
        _ = ask(r, "2.0.0.127.bl.example", .a)
        _ = ask(r, "3.0.0.127.bl.example", .a)
        _ = ask(r, "bad..name", .txt)
        let got = seen.seen.withLockedValue { $0 }
        #expect(got.count == 4)
        guard got.count == 4 else { return }
        guard case .dnsLookup(.a, .records, let sent?) = got[0] else { Issue.record("\(got[0])"); return }
        #expect(sent >= 0 && sent < 5)
        #expect(got[1] == .dnsLookup(.a, .cached, seconds: nil))
        guard case .dnsLookup(.a, .nxdomain, _?) = got[2] else { Issue.record("\(got[2])"); return }
        #expect(got[3] == .dnsLookup(.txt, .badName, seconds: nil))
    }

    @Test func eachRecordTypeComesBackDecodedWithItsTTL() throws {
        let dns = try DnsmasqTestServer(records: Self.records)
        defer { dns.stop() }
        let r = try Resolver(.init(servers: [dns.address], timeout: 5))
        defer { r.shutdown() }
        #expect(ask(r, "2.0.0.127.bl.example", .a) == .records([.address([127, 0, 0, 2])], ttl: 300))
        #expect(ask(r, "2.0.0.127.bl.example", .txt)?.records == [.text(Array("listed: see http://bl.example/".utf8))])
        #expect(ask(r, "v6.example", .aaaa)?.records == [.address(AddressBytes.parse("2001:db8::25")!)])
        #expect(ask(r, "spf.example", .txt)?.records == [.text(Array("v=spf1 ip4:192.0.2.0/24 -all".utf8))])
        let mx = ask(r, "mail.example", .mx)?.records ?? []
        #expect(Set(mx.map { "\($0)" }) == ["mx(preference: 10, exchange: \"mx1.mail.example\")", "mx(preference: 20, exchange: \"mx2.mail.example\")"])
        #expect(ask(r, "5.0.0.10.in-addr.arpa", .ptr)?.records == [.ptr("host.customer.example")],
                "a private range's reverse zone goes to the server (unbound's built-in LAN zones are off)")
        #expect(ask(r, "3.0.0.127.bl.example", .a) == .nxdomain, "not listed")
        #expect(ask(r, "v6.example", .mx) == .noData)
        #expect(r.inFlight == 0)
    }

    /// The answer `lookup` gave on the asking thread: from the front cache, without the resolver's thread.
    /// Judged by the thread the answer came on, not by timing: dnsmasq on loopback can answer through the
    /// resolver's thread before `lookup` has returned.
    func answeredAtOnce(_ r: Resolver, _ name: String, _ type: DNSType) -> DNSAnswer? {
        let asking = pthread_self()
        let got = NIOLockedValueBox<DNSAnswer?>(nil)
        r.lookup(name, type) { a in
            if pthread_equal(pthread_self(), asking) != 0 { got.withLockedValue { $0 = a } }
        }
        return got.withLockedValue { $0 }
    }

    @Test func aKeptAnswerIsGivenOnTheAskingThreadAndAFailureIsNeverKept() throws {
        let dns = try DnsmasqTestServer(records: Self.records)
        defer { dns.stop() }
        let r = try Resolver(.init(servers: [dns.address], timeout: 5))
        defer { r.shutdown() }
        #expect(ask(r, "2.0.0.127.bl.example", .a)?.records == [.address([127, 0, 0, 2])])
        #expect(answeredAtOnce(r, "2.0.0.127.BL.example", .a) == .records([.address([127, 0, 0, 2])], ttl: 300),
                "kept for its TTL, names compared without case")
        #expect(answeredAtOnce(r, "2.0.0.127.bl.example", .txt) == nil, "another type is another question")

        let silent = try ScriptedDNS(.silent)
        defer { silent.stop() }
        let s = try Resolver(.init(servers: [silent.address], timeout: 0.3))
        defer { s.shutdown() }
        // A server that never answers: nothing can come back before `lookup` returns unless it was kept.
        #expect(answeredAtOnce(s, "2.0.0.127.bl.example", .a) == nil, "the first answer comes from the server")
        #expect(ask(s, "2.0.0.127.bl.example", .a) == .failure(.timeout))
        #expect(answeredAtOnce(s, "2.0.0.127.bl.example", .a) == nil, "a timeout is asked again")
    }

    @Test func loopbacksReverseZoneIsAskedOfTheServer() throws {
        let dns = try DnsmasqTestServer(records: ["--host-record=pc161.dialup.example,127.0.0.161", "--local=/in-addr.arpa/"])
        defer { dns.stop() }
        let r = try Resolver(.init(servers: [dns.address], timeout: 5))
        defer { r.shutdown() }
        #expect(ask(r, "161.0.0.127.in-addr.arpa", .ptr)?.records == [.ptr("pc161.dialup.example")],
                "not unbound's built-in localhost answer")
    }

    @Test func manyLookupsAtOnceAreEachAnsweredOnce() throws {
        let dns = try DnsmasqTestServer(records: Self.records)
        defer { dns.stop() }
        let r = try Resolver(.init(servers: [dns.address], timeout: 5, maxInFlight: 50))
        defer { r.shutdown() }
        let answers = NIOLockedValueBox<[String: Int]>([:])
        let group = DispatchGroup()
        for i in 0..<200 {
            group.enter()
            r.lookup("\(i % 7).0.0.127.bl.example", .a) { a in
                let key: String
                switch a {
                case .records: key = "listed"
                case .nxdomain: key = "nx"
                case .failure(.busy): key = "busy"
                default: key = "other \(a)"
                }
                answers.withLockedValue { $0[key, default: 0] += 1 }
                group.leave()
            }
        }
        #expect(group.wait(timeout: .now() + 20) == .success)
        let got = answers.withLockedValue { $0 }
        #expect(got.values.reduce(0, +) == 200)
        #expect(Set(got.keys).isSubset(of: ["listed", "nx", "busy"]), "\(got)")
        #expect((got["listed"] ?? 0) + (got["nx"] ?? 0) >= 50, "at least the first 50 are asked")
        #expect(r.inFlight == 0)
    }

    @Test func aSilentServerIsATimeoutWithinTheDeadline() throws {
        let silent = try ScriptedDNS(.silent)
        defer { silent.stop() }
        let r = try Resolver(.init(servers: [silent.address], timeout: 0.5))
        defer { r.shutdown() }
        let t0 = Date()
        #expect(ask(r, "2.0.0.127.bl.example", .a) == .failure(.timeout))
        let took = Date().timeIntervalSince(t0)
        #expect(took >= 0.45 && took < 2, "took \(took) s")
        #expect(r.inFlight == 0)
    }

    @Test(arguments: [ScriptedDNS.Mode.garbage, .servfail])
    func aServerThatAnswersBadlyIsAFailureNeverAListing(_ mode: ScriptedDNS.Mode) throws {
        let bad = try ScriptedDNS(mode)
        defer { bad.stop() }
        let r = try Resolver(.init(servers: [bad.address], timeout: 1))
        defer { r.shutdown() }
        let answer = ask(r, "2.0.0.127.bl.example", .a)
        guard case .failure = answer else {
            Issue.record("expected a failure, got \(String(describing: answer))")
            return
        }
    }

    @Test func badNamesAndAShutDownResolverAnswerAtOnce() throws {
        let r = try Resolver(.init(servers: ["127.0.0.1@9"], timeout: 1))
        #expect(ask(r, String(repeating: "a", count: 64) + ".test", .a, within: 0.1) == .failure(.badName))
        #expect(ask(r, "a..test", .a, within: 0.1) == .failure(.badName))
        #expect(ask(r, "a b.test", .a, within: 0.1) == .failure(.badName))
        r.shutdown()
        #expect(ask(r, "x.test", .a, within: 0.1) == .failure(.resolver("shut down")))
    }

    @Test func aBadServerAddressIsASetupError() {
        #expect(throws: Resolver.SetupError.self) { _ = try Resolver(.init(servers: ["not an address"], timeout: 1)) }
    }
}
