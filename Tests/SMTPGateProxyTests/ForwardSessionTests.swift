import NIOConcurrencyHelpers
import NIOCore
import NIOEmbedded
@testable import SMTPGateCore
import Testing
@testable import SMTPGateProxy

/// A forward's shell on an embedded loop: the client and the upstream are embedded channels with the
/// relay's side handlers, the upstream "dialled" by the test. What each end is sent, and the log line.
final class ForwardFixture {
    /// Records the close modes a channel is asked for. An embedded channel closes fully whatever the mode,
    /// so a half-close stops here, as a socket's shutdown(SHUT_WR) leaves the channel open for reading.
    final class CloseRecorder: ChannelOutboundHandler, @unchecked Sendable {
        typealias OutboundIn = Any
        var modes: [CloseMode] = []
        func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
            modes.append(mode)
            if mode == .output {
                promise?.succeed(())
            } else {
                context.close(mode: mode, promise: promise)
            }
        }
    }

    let loop = EmbeddedEventLoop()
    let client: EmbeddedChannel
    let server: EmbeddedChannel
    let serverCloses = CloseRecorder()
    let clientCloses = CloseRecorder()
    let records = NIOLockedValueBox<[LogRecord]>([])
    let registry = SessionRegistry()
    var dialled: Origin?
    let session: ForwardSession

    init(rules: ForwardRules = ForwardRules(), idle: Double = 300, connects: Bool = true) throws {
        client = EmbeddedChannel(loop: loop)
        server = EmbeddedChannel(loop: loop)
        client.remoteAddress = try SocketAddress(ipAddress: "192.0.2.7", port: 40000)
        client.localAddress = try SocketAddress(ipAddress: "198.51.100.1", port: 8443)
        var config = Config()
        config.forwardRules = rules
        config.timeoutIdle = idle
        var env = ForwardEnvironment(config: config, listenerName: "web", registry: registry,
                                     finder: FixedOrigin(server: IPAddress("10.0.0.2"), port: 443), abuse: nil,
                                     isLoop: { _ in false },
                                     ended: { [records] c in records.withLockedValue { $0.append(ForwardLog.connection(c)) } })
        let (server, loop) = (self.server, self.loop)
        let box = NIOLockedValueBox<Origin?>(nil)
        env.dial = { origin, session in
            box.withLockedValue { $0 = origin }
            guard connects else {
                return loop.makeFailedFuture(IOError(errnoCode: 111, reason: "connect"))
            }
            try! server.pipeline.syncOperations.addHandler(RelaySideHandler(session: session, side: .server))
            return loop.makeSucceededFuture(server)
        }
        session = ForwardSession(id: "t-1", client: client, env: env)
        // Connected sockets are active; embedded channels are once "connected".
        try client.connect(to: client.remoteAddress!).wait()
        try server.connect(to: SocketAddress(ipAddress: "10.0.0.2", port: 443)).wait()
        try server.pipeline.syncOperations.addHandler(serverCloses)
        try client.pipeline.syncOperations.addHandler(clientCloses)
        try client.pipeline.syncOperations.addHandler(RelaySideHandler(session: session, side: .client))
        session.start()
        loop.run()
        dialled = box.withLockedValue { $0 }
    }

    func sent(_ channel: EmbeddedChannel) throws -> String {
        var out = ""
        while let b = try channel.readOutbound(as: ByteBuffer.self) { out += String(buffer: b) }
        return out
    }

    var lines: [LogRecord] { records.withLockedValue { $0 } }

    func field(_ r: LogRecord, _ key: String) -> String? {
        for (k, v) in r.fields where k == key {
            switch v {
            case .text(let s): return s
            case .int(let n): return String(n)
            case .seconds(let d): return String(d)
            case .recipients: return nil
            }
        }
        return nil
    }
}

@Suite("Forward session shell (EmbeddedChannel)")
struct ForwardSessionTests {
    @Test func bytesGoBothWaysUntouchedAndTheLineCountsThem() throws {
        let f = try ForwardFixture()
        #expect(f.dialled.map { RelaySession.describe($0.destination) } == "10.0.0.2:443")
        try f.client.writeInbound(ByteBuffer(string: "\u{16}\u{03}\u{01} client hello\r\n.\r\n"))
        #expect(try f.sent(f.server) == "\u{16}\u{03}\u{01} client hello\r\n.\r\n")
        try f.server.writeInbound(ByteBuffer(string: "server hello"))
        #expect(try f.sent(f.client) == "server hello")
        #expect(f.registry.count == 1)
        // The client is done: the upstream's output is closed (after what was queued), the session goes on.
        f.client.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        f.loop.run()
        #expect(f.serverCloses.modes == [.output])
        try f.server.writeInbound(ByteBuffer(string: "last words"))
        #expect(try f.sent(f.client) == "last words")
        // Then the upstream finishes too: both close, one line.
        f.server.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        f.loop.run()
        #expect(f.clientCloses.modes.contains(.all))
        let (line,) = try #require(f.lines.count == 1 ? (f.lines[0],) : nil)
        #expect(line.event == "forward")
        #expect(f.field(line, "listener") == "web")
        #expect(f.field(line, "client") == "192.0.2.7:40000")
        #expect(f.field(line, "dest") == "10.0.0.2:443")
        #expect(f.field(line, "bytes_in") == "21")
        #expect(f.field(line, "bytes_out") == "22")
        #expect(f.field(line, "result") == "done-remote-closed")
        #expect(f.registry.count == 0)
    }

    /// What `smtpgate status` shows, read from the registry on the session's loop as the daemon does.
    @Test func theStatusSnapshotFollowsTheSession() throws {
        let f = try ForwardFixture()
        // An embedded loop runs submitted tasks only when told: no wait(), collect the answer instead.
        func snapshots() -> [SessionSnapshot]? {
            var out: [SessionSnapshot]?
            f.registry.snapshots(on: f.loop).whenSuccess { out = $0 }
            f.loop.run()
            return out
        }
        func snapshot() throws -> SessionSnapshot {
            let all = try #require(snapshots())
            return try #require(all.count == 1 ? all[0] : nil)
        }
        try f.client.writeInbound(ByteBuffer(string: "12345"))
        try f.server.writeInbound(ByteBuffer(string: "ab"))
        f.loop.advanceTime(by: .seconds(3))
        let s = try snapshot()
        #expect((s.id, s.listener, s.kind, s.state) == ("t-1", "web", .forward, "relay"))
        #expect((s.client, s.destination, s.bytesIn, s.bytesOut) == ("192.0.2.7:40000", "10.0.0.2:443", 5, 2))
        #expect(s.age == 3, "on the loop's clock")
        f.client.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        f.loop.run()
        #expect(try snapshot().state == "closing", "half-closed: still open, shown as closing")
        f.server.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        f.loop.run()
        #expect(snapshots()?.isEmpty == true)
    }

    @Test func theDestinationClosingFirstIsDoneLocalClosed() throws {
        let f = try ForwardFixture()
        try f.client.writeInbound(ByteBuffer(string: "GET /"))
        f.server.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        f.loop.run()
        #expect(f.clientCloses.modes == [.output])
        try f.server.close().wait()
        f.loop.run()
        #expect(f.clientCloses.modes.last == .all)
        #expect(f.lines.map { f.field($0, "result") } == ["done-local-closed"])
    }

    @Test(arguments: [
        (ForwardRules(globalAllow: [try! AddressPattern(parsing: "10.*")]), "not-allowed", nil as String?, "global"),
        (ForwardRules(deny: [try! AddressPattern(parsing: "192.0.2.0/24")]), "denied", "192.0.2.0/24", "forward"),
        (ForwardRules(allow: [try! AddressPattern(parsing: "192.0.2.8")]), "not-allowed", nil, "forward"),
    ])
    func refusedClientsGetNothingAndTheUpstreamIsNeverDialled(rules: ForwardRules, result: String, pattern: String?, rule: String) throws {
        let f = try ForwardFixture(rules: rules)
        #expect(f.dialled == nil)
        #expect(!f.client.isActive)
        #expect(try f.sent(f.client) == "")
        let line = try #require(f.lines.first)
        #expect(f.lines.count == 1)
        #expect(line.level == .notice)
        #expect(f.field(line, "result") == result)
        #expect(f.field(line, "pattern") == pattern)
        #expect(f.field(line, "rule") == rule)
        #expect(f.field(line, "bytes_in") == "0")
        #expect(f.registry.count == 0)
    }

    @Test func anAllowedClientPassesTheRules() throws {
        let f = try ForwardFixture(rules: ForwardRules(globalAllow: [try AddressPattern(parsing: "192.0.2.*")],
                                                       allow: [try AddressPattern(parsing: "192.0.2.?")]))
        #expect(f.dialled != nil)
        #expect(f.client.isActive)
        #expect(f.lines.isEmpty)
    }

    @Test func aFailedConnectClosesTheClientAndSaysWhy() throws {
        let f = try ForwardFixture(connects: false)
        #expect(!f.client.isActive)
        let line = try #require(f.lines.first)
        #expect(f.field(line, "result") == "local-connect-failed")
        #expect(f.field(line, "error") == "connection refused")
    }

    @Test func idleConnectionsTimeOut() throws {
        let f = try ForwardFixture(idle: 2)
        try f.client.writeInbound(ByteBuffer(string: "x"))
        f.loop.advanceTime(by: .seconds(1))
        try f.server.writeInbound(ByteBuffer(string: "y"))
        f.loop.advanceTime(by: .milliseconds(1500))
        #expect(f.client.isActive, "activity 1.5 s ago: not idle yet")
        f.loop.advanceTime(by: .seconds(1))
        f.loop.run()
        #expect(!f.client.isActive)
        #expect(f.lines.map { f.field($0, "result") } == ["timeout"])
    }

    @Test func aDrainsDeadlineEndsIt() throws {
        let f = try ForwardFixture()
        f.session.shutdown()
        f.loop.run()
        #expect(!f.client.isActive && !f.server.isActive)
        #expect(f.lines.map { f.field($0, "result") } == ["shutdown"])
    }
}
