import Foundation
import NIOCore
import NIOPosix
import SMTPGateCore
import Testing
@testable import SMTPGateProxy

/// A finished message held in memory, handed out in pieces of exactly `maxChunk` (the last one shorter).
final class MemoryMessage: MessageSource {
    let bytes: [UInt8]
    /// Fail after this many pieces, as a spool file that cannot be read back would.
    let failAfter: Int?

    init(_ bytes: [UInt8], failAfter: Int? = nil) {
        self.bytes = bytes
        self.failAfter = failAfter
    }

    var size: Int { bytes.count }

    struct ReadFailed: Error, CustomStringConvertible {
        var description: String { "spool read failed" }
    }

    func forEachChunk(maxChunk: Int, on loop: EventLoop,
                      _ body: @escaping (ByteBuffer) -> EventLoopFuture<Void>) -> EventLoopFuture<Void> {
        func piece(_ index: Int, from start: Int) -> EventLoopFuture<Void> {
            guard start < bytes.count else { return loop.makeSucceededVoidFuture() }
            if let failAfter, index >= failAfter { return loop.makeFailedFuture(ReadFailed()) }
            let end = min(bytes.count, start + maxChunk)
            return body(ByteBuffer(bytes: bytes[start..<end])).flatMap { piece(index + 1, from: end) }
        }
        return piece(0, from: 0)
    }
}

/// What a fake scanner does after each read, given everything it received so far.
private enum FakeAction {
    case wait
    case answer([UInt8])
    case close
}

/// A scanner stand-in on 127.0.0.1 or a unix socket: records what its first client sent, and answers (or
/// not) as the test says. It closes the connection after answering, as clamd and spamd do.
private final class FakeScanner {
    let channel: Channel
    /// Everything the first connection sent, once that connection ended.
    let received: EventLoopPromise<[UInt8]>

    private final class Handler: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer
        private var bytes: [UInt8] = []
        private var done = false
        private let respond: ([UInt8]) -> FakeAction
        private let received: EventLoopPromise<[UInt8]>

        init(respond: @escaping ([UInt8]) -> FakeAction, received: EventLoopPromise<[UInt8]>) {
            self.respond = respond
            self.received = received
        }

        func channelActive(context: ChannelHandlerContext) {
            react(context)
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            bytes += unwrapInboundIn(data).readableBytesView
            react(context)
        }

        private func react(_ context: ChannelHandlerContext) {
            guard !done else { return }
            switch respond(bytes) {
            case .wait:
                break
            case .answer(let answer):
                done = true
                context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(bytes: answer)))
                    .whenComplete { _ in context.close(promise: nil) }
            case .close:
                done = true
                context.close(promise: nil)
            }
        }

        func channelInactive(context: ChannelHandlerContext) {
            received.succeed(bytes)
        }

        func errorCaught(context: ChannelHandlerContext, error: Error) {
            context.close(promise: nil)
        }
    }

    init(group: EventLoopGroup, unixPath: String? = nil, respond: @escaping ([UInt8]) -> FakeAction) throws {
        let received = group.next().makePromise(of: [UInt8].self)
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { ch in ch.pipeline.addHandler(Handler(respond: respond, received: received)) }
        if let unixPath {
            channel = try bootstrap.bind(unixDomainSocketPath: unixPath).wait()
        } else {
            channel = try bootstrap.bind(host: "127.0.0.1", port: 0).wait()
        }
        self.received = received
    }

    var endpoint: ScannerEndpoint {
        if let path = channel.localAddress?.pathname { return .unix(path) }
        return .tcp(IPAddress("127.0.0.1")!, channel.localAddress!.port!)
    }

    func stop() throws {
        try channel.close().wait()
        received.fail(ChannelError.ioOnClosedChannel)
    }
}

/// Answers once `count` bytes arrived.
private func after(_ count: Int, _ answer: [UInt8]) -> ([UInt8]) -> FakeAction {
    { $0.count >= count ? .answer(answer) : .wait }
}

private func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

/// Deterministic, so a framing failure replays; not all one byte value, so a shifted piece shows.
private func sample(_ count: Int) -> [UInt8] {
    (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 8) }
}

@Suite("Scanner clients against loopback fakes", .timeLimit(.minutes(1)))
final class ScannerClientTests {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
    let directory: String

    init() throws {
        directory = NSTemporaryDirectory() + "smtpgate-scan-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    deinit {
        try? FileManager.default.removeItem(atPath: directory)
        try? group.syncShutdownGracefully()
    }

    var loop: EventLoop { group.next() }

    private func clamd(_ message: MemoryMessage, _ fake: FakeScanner, timeout: TimeAmount = .seconds(5)) async throws -> ScanReport {
        try await ClamdClient.scan(message, at: fake.endpoint, timeout: timeout, on: loop).get()
    }

    private func spamd(_ message: MemoryMessage, _ fake: FakeScanner, timeout: TimeAmount = .seconds(5)) async throws -> ScanReport {
        try await SpamdClient.scan(message, at: fake.endpoint, timeout: timeout, on: loop).get()
    }

    /// A port nothing listens on: bound once, then released.
    func closedPort() throws -> Int {
        let ch = try ServerBootstrap(group: group).bind(host: "127.0.0.1", port: 0).wait()
        let port = ch.localAddress!.port!
        try ch.close().wait()
        return port
    }

    // MARK: - clamd

    @Test func clamdCleanOverTCPGetsExactFraming() async throws {
        let message = MemoryMessage(sample(200_000))
        let request = ClamdProtocol.request(for: message.bytes, chunkSize: 65536)
        let fake = try FakeScanner(group: group, respond: after(request.count, bytes("stream: OK") + [0]))
        defer { try? fake.stop() }
        let report = try await clamd(message, fake)
        #expect(report == ScanReport(scanner: .clamd, result: .clean, seconds: report.seconds, size: 200_000))
        #expect(report.seconds > 0 && report.seconds < 5)
        let received = try await fake.received.futureResult.get()
        #expect(received.count == request.count)
        #expect(received == request, "the bytes clamd got are the INSTREAM framing of the message")
    }

    @Test func clamdVirusOverUnixSocket() async throws {
        let message = MemoryMessage(bytes("X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*\r\n"))
        let request = ClamdProtocol.request(for: message.bytes, chunkSize: 65536)
        let fake = try FakeScanner(group: group, unixPath: directory + "/clamd.sock",
                                   respond: after(request.count, bytes("stream: Eicar-Test-Signature FOUND") + [0]))
        defer { try? fake.stop() }
        let report = try await clamd(message, fake)
        #expect(report.result == .virus("Eicar-Test-Signature"))
        #expect(report.scanner == .clamd && report.size == message.size)
        #expect(try await fake.received.futureResult.get() == request)
    }

    @Test func clamdEmptyMessageSendsNoEmptyChunk() async throws {
        let fake = try FakeScanner(group: group, respond: after(14, bytes("stream: OK\n")))
        defer { try? fake.stop() }
        #expect(try await clamd(MemoryMessage([]), fake).result == .clean)
        #expect(try await fake.received.futureResult.get() == bytes("zINSTREAM") + [0, 0, 0, 0, 0])
    }

    @Test func clamdGarbageFails() async throws {
        let fake = try FakeScanner(group: group, respond: after(1, bytes("220 not clamd\r\n")))
        defer { try? fake.stop() }
        #expect(try await clamd(MemoryMessage(sample(1000)), fake).result == .failed("unreadable answer"))
    }

    @Test func clamdEndlessAnswerFails() async throws {
        let fake = try FakeScanner(group: group, respond: after(1, [UInt8](repeating: UInt8(ascii: "A"), count: 100_000)))
        defer { try? fake.stop() }
        #expect(try await clamd(MemoryMessage(sample(1000)), fake).result == .failed("unreadable answer"))
    }

    @Test func clamdSilentTimesOut() async throws {
        let fake = try FakeScanner(group: group) { _ in .wait }
        defer { try? fake.stop() }
        let report = try await clamd(MemoryMessage(sample(1000)), fake, timeout: .milliseconds(500))
        #expect(report.result == .failed("timed out after 0.5s"))
        #expect(report.seconds >= 0.45 && report.seconds < 2, "\(report.seconds)")
        // The client closed its side: the fake saw the connection end.
        #expect(try await fake.received.futureResult.get().starts(with: ClamdProtocol.command))
    }

    @Test func clamdRefused() async throws {
        let port = try closedPort()
        let report = try await ClamdClient.scan(MemoryMessage(sample(10)), at: .tcp(IPAddress("127.0.0.1")!, port),
                                                timeout: .seconds(2), on: loop).get()
        #expect(report.result == .failed("connection refused"))
        #expect(report.size == 10)
    }

    @Test func clamdMissingUnixSocket() async throws {
        let report = try await ClamdClient.scan(MemoryMessage(sample(10)), at: .unix(directory + "/none.sock"),
                                                timeout: .seconds(2), on: loop).get()
        #expect(report.result == .failed("no such socket"))
    }

    @Test func clamdClosesEarly() async throws {
        let fake = try FakeScanner(group: group) { $0.count >= 5 ? .close : .wait }
        defer { try? fake.stop() }
        #expect(try await clamd(MemoryMessage(sample(1000)), fake).result == .failed("closed without an answer"))
    }

    @Test func clamdClosesAtOnce() async throws {
        let fake = try FakeScanner(group: group) { _ in .close }
        defer { try? fake.stop() }
        #expect(try await clamd(MemoryMessage(sample(1000)), fake).result == .failed("closed without an answer"))
    }

    @Test func clamdSizeLimitAnswerWhileStillSending() async throws {
        // clamd stops reading at StreamMaxLength, answers and closes while the client is still writing.
        let fake = try FakeScanner(group: group, respond: after(100_000, bytes("INSTREAM size limit exceeded. ERROR") + [0]))
        defer { try? fake.stop() }
        let report = try await clamd(MemoryMessage(sample(8_000_000)), fake)
        #expect(report.result == .failed("clamd error: INSTREAM size limit exceeded."))
        #expect(report.size == 8_000_000)
    }

    @Test func unreadableMessageFails() async throws {
        let fake = try FakeScanner(group: group) { _ in .wait }
        defer { try? fake.stop() }
        let report = try await clamd(MemoryMessage(sample(300_000), failAfter: 2), fake)
        #expect(report.result == .failed("cannot read the spooled message"))
    }

    @Test func manyScansAtOnce() async throws {
        let message = MemoryMessage(sample(50_000))
        let request = ClamdProtocol.request(for: message.bytes, chunkSize: 65536)
        let fake = try FakeScanner(group: group, respond: after(request.count, bytes("stream: OK") + [0]))
        defer { try? fake.stop() }
        let reports = try await EventLoopFuture.whenAllSucceed(
            (0..<50).map { _ in ClamdClient.scan(message, at: fake.endpoint, timeout: .seconds(5), on: loop) }, on: loop).get()
        #expect(reports.allSatisfy { $0.result == .clean })
    }

    // MARK: - spamd

    @Test func spamdScoreOverTCPGetsExactRequest() async throws {
        let message = MemoryMessage(sample(150_000))
        let request = SpamdProtocol.checkRequest(contentLength: message.size)! + message.bytes
        let fake = try FakeScanner(group: group,
                                   respond: after(request.count, bytes("SPAMD/1.1 0 EX_OK\r\nSpam: True ; 1000.0 / 5.0\r\n\r\n")))
        defer { try? fake.stop() }
        let report = try await spamd(message, fake)
        #expect(report == ScanReport(scanner: .spamd, result: .score(1000), seconds: report.seconds, size: 150_000))
        #expect(try await fake.received.futureResult.get() == request)
    }

    @Test func spamdOverUnixSocketWithUser() async throws {
        let message = MemoryMessage(bytes("Subject: hi\r\n\r\nhello\r\n"))
        let request = SpamdProtocol.checkRequest(contentLength: message.size, user: "filter")! + message.bytes
        let fake = try FakeScanner(group: group, unixPath: directory + "/spamd.sock",
                                   respond: after(request.count, bytes("SPAMD/1.1 0 EX_OK\r\nSpam: False ; -0.5 / 5.0\r\n\r\n")))
        defer { try? fake.stop() }
        let report = try await SpamdClient.scan(message, at: fake.endpoint, timeout: .seconds(5), on: loop, user: "filter").get()
        #expect(report.result == .score(-0.5))
        #expect(try await fake.received.futureResult.get() == request)
    }

    @Test func spamdErrorStatus() async throws {
        let fake = try FakeScanner(group: group, respond: after(1, bytes("SPAMD/1.0 76 Bad header line: (EOF during headers)\r\n")))
        defer { try? fake.stop() }
        #expect(try await spamd(MemoryMessage(sample(100)), fake).result
            == .failed("spamd error: 76 Bad header line: (EOF during headers)"))
    }

    @Test func spamdGarbageFails() async throws {
        let fake = try FakeScanner(group: group, respond: after(1, bytes("SPAMD/1.1 0 EX_OK\r\nContent-length: 0\r\n\r\n")))
        defer { try? fake.stop() }
        #expect(try await spamd(MemoryMessage(sample(100)), fake).result == .failed("unreadable answer"))
    }

    @Test func spamdSilentTimesOut() async throws {
        let fake = try FakeScanner(group: group) { _ in .wait }
        defer { try? fake.stop() }
        let report = try await spamd(MemoryMessage(sample(100)), fake, timeout: .milliseconds(500))
        #expect(report.result == .failed("timed out after 0.5s"))
        #expect(report.seconds >= 0.45 && report.seconds < 2)
    }

    @Test func spamdRefusedAndClosedEarly() async throws {
        let port = try closedPort()
        let refused = try await SpamdClient.scan(MemoryMessage(sample(10)), at: .tcp(IPAddress("127.0.0.1")!, port),
                                                 timeout: .seconds(2), on: loop).get()
        #expect(refused.result == .failed("connection refused"))
        let fake = try FakeScanner(group: group) { $0.count >= 10 ? .close : .wait }
        defer { try? fake.stop() }
        #expect(try await spamd(MemoryMessage(sample(100)), fake).result == .failed("closed without an answer"))
    }

    @Test func spamdUnsafeUserFailsAtOnce() async throws {
        let report = try await SpamdClient.scan(MemoryMessage(sample(10)), at: .unix(directory + "/none.sock"),
                                                timeout: .seconds(2), on: loop, user: "a\r\nb").get()
        #expect(report.result == .failed("unusable spamd user name"))
    }

    @Test func timeoutIsDescribedAsConfigured() {
        #expect(ScannerConnection.describe(.seconds(2)) == "2s")
        #expect(ScannerConnection.describe(.milliseconds(500)) == "0.5s")
        #expect(ScannerConnection.describe(.milliseconds(1250)) == "1.25s")
    }
}
