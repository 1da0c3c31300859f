import NIOCore
import NIOEmbedded
import NIOHTTP1
import SMTPGateCore
import Testing
@testable import SMTPGateRuntime

/// The admin listener's request handler in an EmbeddedChannel: what a scraper or a browser gets back.
struct AdminServerTests {
    func channel(_ handler: @escaping AdminServer.Handler) throws -> EmbeddedChannel {
        let ch = EmbeddedChannel()
        try ch.pipeline.syncOperations.configureHTTPServerPipeline(withPipeliningAssistance: false, withErrorHandling: true)
        try ch.pipeline.syncOperations.addHandler(AdminHTTPHandler(handler: handler))
        try ch.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 9125)).wait()
        return ch
    }

    /// A client dripping its request head byte by byte is never idle, yet it is cut off at the deadline.
    @Test func aRequestDrippedSlowlyIsClosedAtTheConnectionDeadline() throws {
        let ch = try channel(answers)
        let loop = ch.embeddedEventLoop
        for byte in "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:91".utf8 {
            try ch.writeInbound(ByteBuffer(bytes: [byte]))
            loop.advanceTime(by: .milliseconds(600))
            if !ch.isActive { break }
        }
        #expect(ch.isActive, "still open before the deadline")
        loop.advanceTime(by: AdminServer.connectionDeadline)
        #expect(!ch.isActive)
        #expect(!(try response(ch)).contains("200 OK"), "no answer to a request never finished")
    }

    func response(_ ch: EmbeddedChannel) throws -> String {
        var out = ""
        while let b = try ch.readOutbound(as: ByteBuffer.self) { out += String(buffer: b) }
        return out
    }

    let answers: AdminServer.Handler = { route, loop in
        switch route {
        case .metrics: return loop.makeSucceededFuture(AdminResponse(status: 200, reason: "OK", contentType: AdminResponse.metricsType, body: Array("m 1\n".utf8)))
        case .statusPage: return loop.makeSucceededFuture(AdminResponse(status: 200, reason: "OK", contentType: "text/html; charset=utf-8", body: Array("<p>".utf8)))
        default: return loop.makeSucceededFuture(.text(200, "OK", "ok"))
        }
    }

    @Test func aGetIsAnsweredWholeAndTheConnectionCloses() throws {
        let ch = try channel(answers)
        try ch.writeInbound(ByteBuffer(string: "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:9125\r\n\r\n"))
        let r = try response(ch)
        #expect(r.hasPrefix("HTTP/1.1 200 OK\r\n"))
        #expect(r.contains("Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"))
        #expect(r.contains("Content-Length: 4\r\n") && r.contains("Connection: close\r\n"))
        #expect(r.hasSuffix("\r\n\r\nm 1\n"))
        #expect(!ch.isActive)
    }

    @Test func thePageForbidsScriptsThroughItsHeaders() throws {
        let ch = try channel(answers)
        try ch.writeInbound(ByteBuffer(string: "GET / HTTP/1.1\r\nHost: 127.0.0.1:9125\r\n\r\n"))
        let r = try response(ch)
        #expect(r.contains("Content-Security-Policy: default-src 'none'"))
        #expect(r.contains("X-Content-Type-Options: nosniff"))
    }

    @Test func headHasNoBodyAndOtherMethodsAndPathsAreRefused() throws {
        let head = try channel(answers)
        try head.writeInbound(ByteBuffer(string: "HEAD /metrics HTTP/1.1\r\nHost: 127.0.0.1:9125\r\n\r\n"))
        let h = try response(head)
        #expect(h.hasPrefix("HTTP/1.1 200 OK") && h.hasSuffix("\r\n\r\n"))

        let post = try channel(answers)
        try post.writeInbound(ByteBuffer(string: "POST /metrics HTTP/1.1\r\nHost: 127.0.0.1:9125\r\nContent-Length: 2\r\n\r\nab"))
        #expect(try response(post).hasPrefix("HTTP/1.1 405 Method Not Allowed"))

        let missing = try channel(answers)
        try missing.writeInbound(ByteBuffer(string: "GET /../../etc/passwd HTTP/1.1\r\nHost: 127.0.0.1:9125\r\n\r\n"))
        #expect(try response(missing).hasPrefix("HTTP/1.1 404 Not Found"))
    }

    @Test func aLargeBodyClosesTheConnectionUnanswered() throws {
        let ch = try channel(answers)
        let body = String(repeating: "x", count: AdminHTTPHandler.maxBody + 1)
        try ch.writeInbound(ByteBuffer(string: "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:9125\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)"))
        #expect(!ch.isActive)
        #expect(!(try response(ch)).contains("200 OK"))
    }

    @Test func garbageGetsABadRequestNotACrash() throws {
        let ch = try channel(answers)
        _ = try? ch.writeInbound(ByteBuffer(bytes: [0x00, 0xff, 0x0d, 0x0a, 0x0d, 0x0a]))
        #expect(try response(ch).hasPrefix("HTTP/1.1 400 Bad Request"))
    }

    @Test(arguments: ["evil.example", "evil.example:9125", "127.0.0.1.evil.example", "127.0.0.1:x", "[::1", "[::1]x", "a b.example"])
    func aRequestForAHostNameIsRefusedSoDNSRebindingReadsNothing(_ host: String) throws {
        let ch = try channel(answers)
        try ch.writeInbound(ByteBuffer(string: "GET /metrics HTTP/1.1\r\nHost: \(host)\r\n\r\n"))
        let r = try response(ch)
        #expect(r.hasPrefix("HTTP/1.1 421 Misdirected Request") && !r.contains("m 1"), "\(r)")
    }

    @Test(arguments: ["127.0.0.1:9125", "[::1]:9125", "localhost:9125", "LOCALHOST", "10.77.0.1"])
    func addressLiteralsAndLocalhostAreAnswered(_ host: String) throws {
        let ch = try channel(answers)
        try ch.writeInbound(ByteBuffer(string: "GET /metrics HTTP/1.1\r\nHost: \(host)\r\n\r\n"))
        #expect(try response(ch).hasPrefix("HTTP/1.1 200 OK"))
    }

    @Test func twoHostHeadersAreRefusedAndHTTP10WithoutOneIsAnswered() throws {
        let two = try channel(answers)
        try two.writeInbound(ByteBuffer(string: "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nHost: evil.example\r\n\r\n"))
        #expect(try response(two).hasPrefix("HTTP/1.1 421"))
        let old = try channel(answers)
        try old.writeInbound(ByteBuffer(string: "GET /metrics HTTP/1.0\r\n\r\n"))
        #expect(try response(old).hasPrefix("HTTP/1.0 200 OK"))
    }

    @Test func aFailedAnswerIsA500() throws {
        struct Broken: Error {}
        let ch = try channel { _, loop in loop.makeFailedFuture(Broken()) }
        try ch.writeInbound(ByteBuffer(string: "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:9125\r\n\r\n"))
        #expect(try response(ch).hasPrefix("HTTP/1.1 500 Internal Server Error"))
    }

    @Test func theRegistryRendersHelpAndTypeForEveryFamilyItHolds() {
        let r = MetricsRegistry()
        r.counter(.sessions, "main", "client").increment(by: 3)
        r.timer(.scanDuration, "clamd").record(seconds: 0.02)
        r.gauge(.sessionsOpen, "main").set(2)
        let text = String(decoding: r.render(), as: UTF8.self)
        #expect(text.contains("# HELP smtpgate_sessions_total \(MetricFamily.sessions.help)"))
        #expect(text.contains("# TYPE smtpgate_sessions_total counter"))
        #expect(text.contains("smtpgate_sessions_total{listener=\"main\",closed_by=\"client\"} 3"))
        #expect(text.contains("smtpgate_scan_duration_seconds_bucket{scanner=\"clamd\",le=\"0.025\"} 1"))
        #expect(text.contains("smtpgate_scan_duration_seconds_bucket{scanner=\"clamd\",le=\"0.01\"} 0"))
        #expect(text.contains("smtpgate_sessions_open{listener=\"main\"} 2"))
    }
}
