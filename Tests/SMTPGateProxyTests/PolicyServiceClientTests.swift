import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import SMTPGateCore
import Testing
@testable import SMTPGateProxy

/// A Postfix-protocol policy server stand-in on 127.0.0.1 (or a unix socket): reads requests (attribute
/// lines up to an empty line) and behaves as the test says. Counts connections and records requests.
private final class FakePolicyServer: @unchecked Sendable {
    enum Behaviour {
        /// Answers `action=TEXT` and keeps the connection, as postgrey does.
        case answer(String)
        /// Answers, then closes.
        case answerAndClose(String)
        /// Sends these bytes as the answer, keeping the connection.
        case raw(String)
        /// Reads and never answers.
        case silent
    }

    let channel: Channel
    private let state = NIOLockedValueBox<(connections: Int, closed: Int, requests: [[String]])>((0, 0, []))
    private let children = NIOLockedValueBox<[Channel]>([])

    var connections: Int { state.withLockedValue { $0.connections } }
    var closedConnections: Int { state.withLockedValue { $0.closed } }
    var requests: [[String]] { state.withLockedValue { $0.requests } }

    private final class Handler: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer
        private var bytes: [UInt8] = []
        private let server: FakePolicyServer
        private let behaviour: Behaviour

        init(server: FakePolicyServer, behaviour: Behaviour) {
            self.server = server
            self.behaviour = behaviour
        }

        func channelActive(context: ChannelHandlerContext) {
            server.state.withLockedValue { $0.connections += 1 }
            server.children.withLockedValue { $0.append(context.channel) }
        }

        func channelInactive(context: ChannelHandlerContext) {
            server.state.withLockedValue { $0.closed += 1 }
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            bytes += unwrapInboundIn(data).readableBytesView
            // One request ends at its empty line; the first line is never empty.
            while let end = bytes.indices.dropLast().first(where: { bytes[$0] == 10 && bytes[$0 + 1] == 10 }) {
                let request = String(decoding: bytes[...end], as: UTF8.self).split(separator: "\n").map(String.init)
                bytes.removeSubrange(...(end + 1))
                server.state.withLockedValue { $0.requests.append(request) }
                respond(context)
            }
        }

        private func respond(_ context: ChannelHandlerContext) {
            func send(_ text: String) -> EventLoopFuture<Void> {
                context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(string: text)))
            }
            switch behaviour {
            case .answer(let action): _ = send("action=\(action)\n\n")
            case .answerAndClose(let action): send("action=\(action)\n\n").whenComplete { _ in context.close(promise: nil) }
            case .raw(let text): _ = send(text)
            case .silent: break
            }
        }

        func errorCaught(context: ChannelHandlerContext, error: Error) {
            context.close(promise: nil)
        }
    }

    private init(channel: Channel) {
        self.channel = channel
    }

    /// Bound and listening; awaited, not waited for, so no thread the test tasks share is held.
    static func start(group: EventLoopGroup, unixPath: String? = nil, _ behaviour: Behaviour) async throws -> FakePolicyServer {
        let box = NIOLockedValueBox<FakePolicyServer?>(nil)
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { ch in
                ch.pipeline.addHandler(Handler(server: box.withLockedValue { $0! }, behaviour: behaviour))
            }
        let channel: Channel
        if let unixPath {
            channel = try await bootstrap.bind(unixDomainSocketPath: unixPath).get()
        } else {
            channel = try await bootstrap.bind(host: "127.0.0.1", port: 0).get()
        }
        let server = FakePolicyServer(channel: channel)
        box.withLockedValue { $0 = server }
        return server
    }

    var endpoint: PolicyServiceEndpoint {
        if let path = channel.localAddress?.pathname { return .unix(path) }
        return .inet(IPAddress("127.0.0.1")!, channel.localAddress!.port!)
    }

    /// Closes every connection the server accepted, as a restarted server would.
    func dropConnections() {
        for ch in children.withLockedValue({ $0 }) { ch.close(promise: nil) }
    }

    func stop() {
        dropConnections()
        channel.close(promise: nil)
    }
}

@Suite("Policy service client against loopback fakes", .timeLimit(.minutes(1)))
final class PolicyServiceClientTests {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
    let directory: String

    init() throws {
        directory = NSTemporaryDirectory() + "smtpgate-policy-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    deinit {
        try? FileManager.default.removeItem(atPath: directory)
        try? group.syncShutdownGracefully()
    }

    let request = PolicyRequest(protocolState: .rcpt, protocolName: "ESMTP", clientAddress: "192.0.2.7",
                                heloName: "mx.example.org", sender: "a@example.org", recipient: "b@example.net")

    private func client(_ server: FakePolicyServer, timeout: Double = 5, tryLimit: Int = 2, retryDelay: Double = 0.05,
                        maxIdle: Double = 300, requestLimit: Int = 0) -> PolicyServiceClient {
        PolicyServiceClient(settings: PolicyServiceSettings(endpoint: server.endpoint, timeout: timeout, maxIdle: maxIdle,
                                                            tryLimit: tryLimit, retryDelay: retryDelay,
                                                            requestLimit: requestLimit))
    }

    /// Waits (bounded) until `condition` holds. Generous: a loaded machine running the whole suite can take
    /// seconds to schedule a test task, and a condition that holds returns at once anyway.
    private func eventually(_ seconds: Double = 30, _ condition: () async throws -> Bool) async throws -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while !(try await condition()) {
            if Date() > deadline { return false }
            try await Task.sleep(nanoseconds: 20_000_000)
        }
        return true
    }

    @Test func answersAndKeepsOneConnection() async throws {
        let server = try await FakePolicyServer.start(group: group, .answer("DUNNO"))
        defer { server.stop() }
        let client = client(server)
        defer { client.shutdown() }
        let loop = group.next()
        for _ in 0..<5 {
            #expect(try await client.query(request, on: loop).get() == .action("DUNNO"))
        }
        #expect(server.connections == 1)
        #expect(server.requests.count == 5)
        #expect(server.requests[0] == latin1Lines(request.encode()))
        #expect(server.requests[0].contains("sender=a@example.org"))
        let counts = try await client.connections(on: loop).get()
        #expect(counts.open == 1 && counts.idle == 1)
    }

    @Test func eachLoopHasItsOwnConnections() async throws {
        let server = try await FakePolicyServer.start(group: group, .answer("OK"))
        defer { server.stop() }
        let client = client(server)
        defer { client.shutdown() }
        let a = group.next(), b = group.next()
        #expect(a !== b)
        #expect(try await client.query(request, on: a).get() == .action("OK"))
        #expect(try await client.query(request, on: b).get() == .action("OK"))
        #expect(try await client.query(request, on: a).get() == .action("OK"))
        #expect(server.connections == 2)
    }

    @Test func concurrentQueriesUseOneConnectionEach() async throws {
        let server = try await FakePolicyServer.start(group: group, .answer("DUNNO"))
        defer { server.stop() }
        let client = client(server)
        defer { client.shutdown() }
        let loop = group.next()
        let request = self.request
        let answers = try await loop.flatSubmit {
            EventLoopFuture.whenAllSucceed((0..<20).map { _ in client.query(request, on: loop) }, on: loop)
        }.get()
        #expect(answers == Array(repeating: .action("DUNNO"), count: 20))
        #expect(server.connections == 20)
        let counts = try await client.connections(on: loop).get()
        #expect(counts.idle == PolicyServicePool.Limits().idle)
        #expect(counts.open == PolicyServicePool.Limits().idle)
        // The next 20 reuse the idle ones and open only what is missing.
        _ = try await loop.flatSubmit {
            EventLoopFuture.whenAllSucceed((0..<20).map { _ in client.query(request, on: loop) }, on: loop)
        }.get()
        #expect(server.connections == 24)
    }

    @Test func queriesBeyondTheOpenLimitWaitForAConnection() async throws {
        let server = try await FakePolicyServer.start(group: group, .answer("DUNNO"))
        defer { server.stop() }
        let client = PolicyServiceClient(settings: PolicyServiceSettings(endpoint: server.endpoint, timeout: 5),
                                         limits: .init(idle: 2, open: 3, waiting: 100))
        defer { client.shutdown() }
        let loop = group.next()
        let request = self.request
        let answers = try await loop.flatSubmit {
            EventLoopFuture.whenAllSucceed((0..<50).map { _ in client.query(request, on: loop) }, on: loop)
        }.get()
        #expect(answers == Array(repeating: .action("DUNNO"), count: 50))
        #expect(server.connections == 3)
        #expect(server.requests.count == 50)
        let counts = try await client.connections(on: loop).get()
        #expect(counts.open == 2 && counts.idle == 2)
    }

    @Test func waitingIsBoundedAndTimesOut() async throws {
        let server = try await FakePolicyServer.start(group: group, .silent)
        defer { server.stop() }
        let client = PolicyServiceClient(settings: PolicyServiceSettings(endpoint: server.endpoint, timeout: 0.3, tryLimit: 1),
                                         limits: .init(idle: 2, open: 2, waiting: 3))
        defer { client.shutdown() }
        let loop = group.next()
        let request = self.request
        let answers = try await loop.flatSubmit {
            EventLoopFuture.whenAllSucceed((0..<6).map { _ in client.query(request, on: loop) }, on: loop)
        }.get()
        #expect(answers.filter { $0 == .failed(reason: "timed out after 0.3s") }.count == 5)
        #expect(answers.last == .failed(reason: "more than 3 policy queries waiting for a connection"))
        // The waiting ones never got a connection: their time ran out in the queue.
        #expect(server.connections <= 5)
        #expect(server.requests.count <= 5)
    }

    @Test func maxTTLRetiresAConnection() async throws {
        let server = try await FakePolicyServer.start(group: group, .answer("DUNNO"))
        defer { server.stop() }
        let client = PolicyServiceClient(settings: PolicyServiceSettings(endpoint: server.endpoint, timeout: 5, maxTTL: 2))
        defer { client.shutdown() }
        let loop = group.next()
        #expect(try await client.query(request, on: loop).get() == .action("DUNNO"))
        #expect(try await client.query(request, on: loop).get() == .action("DUNNO"))
        #expect(server.connections == 1)
        try await Task.sleep(nanoseconds: 2_100_000_000)
        #expect(try await client.query(request, on: loop).get() == .action("DUNNO"))
        #expect(server.connections == 2)
        #expect(try await eventually { server.closedConnections == 1 })
    }

    @Test func silentServerTimesOutWithinTryLimitTimesTimeout() async throws {
        let server = try await FakePolicyServer.start(group: group, .silent)
        defer { server.stop() }
        let client = client(server, timeout: 0.4, tryLimit: 2, retryDelay: 0.1)
        defer { client.shutdown() }
        let start = Date()
        let answer = try await client.query(request, on: group.next()).get()
        let elapsed = Date().timeIntervalSince(start)
        #expect(answer == .failed(reason: "2 attempts failed, the last: timed out after 0.4s"))
        #expect(elapsed >= 0.85 && elapsed < 5, "\(elapsed)")
        // Each attempt had its own connection, and a timed-out one is closed (a late answer would desync it).
        #expect(server.connections == 2)
        #expect(try await eventually { server.closedConnections == 2 })
    }

    @Test func oneTryMeansOneAttempt() async throws {
        let server = try await FakePolicyServer.start(group: group, .silent)
        defer { server.stop() }
        let client = client(server, timeout: 0.3, tryLimit: 1)
        defer { client.shutdown() }
        #expect(try await client.query(request, on: group.next()).get() == .failed(reason: "timed out after 0.3s"))
        #expect(server.connections == 1)
    }

    @Test func serverClosingAfterEachAnswerReconnects() async throws {
        let server = try await FakePolicyServer.start(group: group, .answerAndClose("DEFER_IF_PERMIT Greylisted"))
        defer { server.stop() }
        let client = client(server)
        defer { client.shutdown() }
        let loop = group.next()
        for i in 1...4 {
            #expect(try await client.query(request, on: loop).get() == .action("DEFER_IF_PERMIT Greylisted"))
            #expect(try await eventually { server.closedConnections == i })
            #expect(try await eventually { try await client.connections(on: loop).get().open == 0 })
        }
        #expect(server.connections == 4)
        #expect(server.requests.count == 4)
    }

    @Test func restartedServerIsRetriedOnAFreshConnection() async throws {
        let server = try await FakePolicyServer.start(group: group, .answer("DUNNO"))
        defer { server.stop() }
        let client = client(server)
        defer { client.shutdown() }
        let loop = group.next()
        #expect(try await client.query(request, on: loop).get() == .action("DUNNO"))
        server.dropConnections()
        #expect(try await eventually { try await client.connections(on: loop).get().open == 0 })
        #expect(try await client.query(request, on: loop).get() == .action("DUNNO"))
        #expect(server.connections == 2)
    }

    @Test func garbageIsAProtocolError() async throws {
        let server = try await FakePolicyServer.start(group: group, .raw("HTTP/1.0 400 Bad Request\r\n\r\n"))
        defer { server.stop() }
        let client = client(server)
        defer { client.shutdown() }
        let answer = try await client.query(request, on: group.next()).get()
        #expect(answer == .failed(reason: "2 attempts failed, the last: policy server sent a reply line that is not name=value: \"HTTP/1.0 400 Bad Request\""))
        #expect(try await eventually { server.closedConnections == 2 })
    }

    @Test func noActionAndOversizeAreErrors() async throws {
        let noAction = try await FakePolicyServer.start(group: group, .raw("reason=none\n\n"))
        defer { noAction.stop() }
        let c1 = client(noAction, tryLimit: 1)
        defer { c1.shutdown() }
        #expect(try await c1.query(request, on: group.next()).get() == .failed(reason: "policy server sent a reply without an action attribute"))
        let huge = try await FakePolicyServer.start(group: group, .raw("action=" + String(repeating: "A", count: 100_000)))
        defer { huge.stop() }
        let c2 = client(huge, tryLimit: 1)
        defer { c2.shutdown() }
        #expect(try await c2.query(request, on: group.next()).get() == .failed(reason: "policy server sent a reply line longer than 4096 bytes"))
    }

    @Test func extraBytesAfterAnAnswerRetireTheConnection() async throws {
        let server = try await FakePolicyServer.start(group: group, .raw("action=DUNNO\n\naction=REJECT\n\n"))
        defer { server.stop() }
        let client = client(server)
        defer { client.shutdown() }
        let loop = group.next()
        #expect(try await client.query(request, on: loop).get() == .action("DUNNO"))
        #expect(try await client.query(request, on: loop).get() == .action("DUNNO"))
        #expect(server.connections == 2)
    }

    @Test func closedWithoutAnAnswer() async throws {
        let server = try await FakePolicyServer.start(group: group, .answerAndClose(""))
        defer { server.stop() }
        // `action=` then close: an empty action, a protocol error.
        let c = client(server, tryLimit: 1)
        defer { c.shutdown() }
        #expect(try await c.query(request, on: group.next()).get() == .failed(reason: "policy server sent an empty action"))
        let cut = try await FakePolicyServer.start(group: group, .raw(""))
        defer { cut.stop() }
        // A timeout long enough that only the close can end the query, however slowly the test runs.
        let c2 = client(cut, timeout: 20, tryLimit: 1)
        defer { c2.shutdown() }
        let loop = group.next()
        let pending = c2.query(request, on: loop)
        #expect(try await eventually { cut.requests.count == 1 })
        cut.dropConnections()
        #expect(try await pending.get() == .failed(reason: "policy server closed without an answer"))
    }

    @Test func refusedConnection() async throws {
        // Bound and never listening: refused, and the port cannot go to a server another test starts meanwhile.
        let (fd, port) = try boundNotListening()
        defer { close(fd) }
        let client = PolicyServiceClient(settings: PolicyServiceSettings(endpoint: .inet(IPAddress("127.0.0.1")!, port),
                                                                         timeout: 2, retryDelay: 0.05))
        defer { client.shutdown() }
        #expect(try await client.query(request, on: group.next()).get() == .failed(reason: "2 attempts failed, the last: connection refused"))
        let missing = PolicyServiceClient(settings: PolicyServiceSettings(endpoint: .unix(directory + "/none.sock"), tryLimit: 1))
        #expect(try await missing.query(request, on: group.next()).get() == .failed(reason: "no such socket"))
    }

    @Test func requestLimitAndMaxIdleCloseConnections() async throws {
        let server = try await FakePolicyServer.start(group: group, .answer("DUNNO"))
        defer { server.stop() }
        let limited = client(server, requestLimit: 2)
        defer { limited.shutdown() }
        let loop = group.next()
        for _ in 0..<4 { #expect(try await limited.query(request, on: loop).get() == .action("DUNNO")) }
        #expect(server.connections == 2)
        #expect(try await eventually { server.closedConnections == 2 })

        let idle = client(server, maxIdle: 0.2)
        defer { idle.shutdown() }
        #expect(try await idle.query(request, on: loop).get() == .action("DUNNO"))
        #expect(try await eventually { server.closedConnections == 3 })
        #expect(try await idle.connections(on: loop).get().open == 0)
    }

    @Test func unixSocketAndPolicyContext() async throws {
        let server = try await FakePolicyServer.start(group: group, unixPath: directory + "/policy.sock", .answer("OK"))
        defer { server.stop() }
        var settings = PolicyServiceSettings(endpoint: server.endpoint)
        settings.policyContext = "submission"
        let client = PolicyServiceClient(settings: settings)
        defer { client.shutdown() }
        #expect(try await client.query(request, on: group.next()).get() == .action("OK"))
        #expect(server.requests.first?.contains("policy_context=submission") == true)
    }

    @Test func afterShutdownQueriesFailAtOnce() async throws {
        let server = try await FakePolicyServer.start(group: group, .answer("OK"))
        defer { server.stop() }
        let client = client(server)
        let loop = group.next()
        #expect(try await client.query(request, on: loop).get() == .action("OK"))
        client.shutdown()
        #expect(try await eventually { server.closedConnections == 1 })
        #expect(try await client.query(request, on: loop).get() == .failed(reason: "shutting down"))
        // A loop it never used is refused too.
        let other = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        #expect(try await client.query(request, on: other.next()).get() == .failed(reason: "shutting down"))
        try await other.shutdownGracefully()
    }

    @Test func aTimedOutWaiterGivesUpItsPlace() async throws {
        let server = try await FakePolicyServer.start(group: group, .silent)
        defer { server.stop() }
        let client = PolicyServiceClient(settings: PolicyServiceSettings(endpoint: server.endpoint, timeout: 0.3, tryLimit: 1),
                                         limits: .init(idle: 1, open: 1, waiting: 2))
        defer { client.shutdown() }
        let loop = group.next()
        let request = self.request
        for _ in 0..<3 {
            // One on the connection, two waiting: all time out, and the queue is empty again for the next round.
            let answers = try await loop.flatSubmit {
                EventLoopFuture.whenAllSucceed((0..<3).map { _ in client.query(request, on: loop) }, on: loop)
            }.get()
            #expect(answers == Array(repeating: .failed(reason: "timed out after 0.3s"), count: 3))
        }
    }
}

/// A TCP socket bound to 127.0.0.1 without `listen`: connecting to its port is refused.
private func boundNotListening() throws -> (Int32, Int) {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    let ok = withUnsafeMutablePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) == 0 && getsockname(fd, $0, &len) == 0 }
    }
    guard ok else {
        close(fd)
        throw IOError(errnoCode: errno, reason: "bind 127.0.0.1:0")
    }
    return (fd, Int(UInt16(bigEndian: addr.sin_port)))
}

private func latin1Lines(_ bytes: [UInt8]) -> [String] {
    String(decoding: bytes, as: UTF8.self).split(separator: "\n").map(String.init)
}
