#if canImport(Glibc)
import Glibc
#endif
import NIOCore
import NIOPosix
import SMTPGateCore

/// How a scanner's answer is read as it arrives; the readers of SMTPGateCore's protocols fit it.
protocol ScannerAnswer {
    init()
    /// The result once the answer is complete; nil while more is needed.
    mutating func take(_ bytes: ByteBufferView) -> ScanReport.Result?
    /// The result when the connection ended first.
    func atEnd() -> ScanReport.Result
}

/// What a scanner is sent: a header, the message with optional bytes before each piece, then a trailer.
struct ScannerRequest {
    var scanner: ScanReport.Scanner
    var header: [UInt8]
    var pieceHeader: ((Int) -> [UInt8])?
    var trailer: [UInt8]
}

/// One request and its answer over a fresh connection, all on one event loop. Every outcome, including
/// each failure, becomes a report; the connection is closed whatever happens.
final class ScannerConnection {
    /// Small enough to keep memory per scan low, large enough that a 50 KB message is one write.
    static let pieceSize = 64 * 1024

    private let request: ScannerRequest
    private let message: MessageSource
    private let timeout: TimeAmount
    private let loop: EventLoop
    private let promise: EventLoopPromise<ScanReport>
    private let start = NIODeadline.now()
    private var channel: Channel?
    private var timer: Scheduled<Void>?
    private var finished = false

    /// The streaming stopped on purpose (the answer came first) or because the connection failed; either
    /// way the answer, or the connection's end, decides the result.
    private struct StopSending: Error {}

    private init(request: ScannerRequest, message: MessageSource, timeout: TimeAmount, loop: EventLoop) {
        self.request = request
        self.message = message
        self.timeout = timeout
        self.loop = loop
        self.promise = loop.makePromise(of: ScanReport.self)
    }

    static func exchange<Answer: ScannerAnswer>(_ request: ScannerRequest, reading _: Answer.Type,
                                                 message: MessageSource, at endpoint: ScannerEndpoint,
                                                 timeout: TimeAmount, on loop: EventLoop) -> EventLoopFuture<ScanReport> {
        loop.flatSubmit {
            let connection = ScannerConnection(request: request, message: message, timeout: timeout, loop: loop)
            connection.run(endpoint, answer: Answer.self)
            return connection.promise.futureResult
        }
    }

    private func run<Answer: ScannerAnswer>(_ endpoint: ScannerEndpoint, answer: Answer.Type) {
        let timer = loop.scheduleTask(in: timeout) { [self] in
            finish(.failed("timed out after \(Self.describe(timeout))"))
        }
        // Also when the loop shuts down first: the report's promise must never be left pending.
        timer.futureResult.whenFailure { [self] _ in finish(.failed("shutting down")) }
        self.timer = timer
        let bootstrap = ClientBootstrap(group: loop)
            .connectTimeout(timeout)
            .channelInitializer { [self] ch in
                ch.pipeline.addHandler(ScannerAnswerHandler(connection: self, answer: Answer()))
            }
        let connected: EventLoopFuture<Channel>
        switch endpoint {
        case .unix(let path):
            connected = bootstrap.connect(unixDomainSocketPath: path)
        case .tcp(let ip, let port):
            do {
                connected = bootstrap.channelOption(.tcpOption(.tcp_nodelay), value: 1)
                    .connect(to: try SocketAddress(ipAddress: ip.text, port: port))
            } catch {
                finish(.failed("unusable address \(endpoint)"))
                return
            }
        }
        connected.whenComplete { [self] result in
            switch result {
            case .success(let ch):
                guard !finished else {
                    ch.close(promise: nil)
                    return
                }
                channel = ch
                send(on: ch)
            case .failure(let error):
                finish(.failed(reason(error)))
            }
        }
    }

    /// One piece in flight at a time: each write is waited for before the next piece is read.
    private func send(on ch: Channel) {
        write(request.header, on: ch, flush: false)
            .flatMap { [self] in
                message.forEachChunk(maxChunk: Self.pieceSize, on: loop) { [self] piece in
                    guard !finished else { return loop.makeFailedFuture(StopSending()) }
                    // An empty piece would read as clamd's end of stream.
                    guard piece.readableBytes > 0 else { return loop.makeSucceededVoidFuture() }
                    if let pieceHeader = request.pieceHeader {
                        ch.write(ch.allocator.buffer(bytes: pieceHeader(piece.readableBytes)), promise: nil)
                    }
                    return write(piece, on: ch)
                }
            }
            .flatMap { [self] in write(request.trailer, on: ch) }
            .whenFailure { [self] error in
                guard !(error is StopSending) else { return }
                // The detail (a spool path, an errno) is not for the client's reply; the spool logs its own failures.
                finish(.failed("cannot read the spooled message"))
            }
    }

    private func write(_ bytes: [UInt8], on ch: Channel, flush: Bool = true) -> EventLoopFuture<Void> {
        write(ch.allocator.buffer(bytes: bytes), on: ch, flush: flush)
    }

    private func write(_ buffer: ByteBuffer, on ch: Channel, flush: Bool = true) -> EventLoopFuture<Void> {
        guard !flush else { return ch.writeAndFlush(buffer).flatMapErrorThrowing { _ in throw StopSending() } }
        ch.write(buffer, promise: nil)
        return loop.makeSucceededVoidFuture()
    }

    /// The first outcome wins; later ones (a timer racing an answer, the close after an answer) are dropped.
    func finish(_ result: ScanReport.Result) {
        guard !finished else { return }
        finished = true
        timer?.cancel()
        channel?.close(promise: nil)
        let seconds = Double((NIODeadline.now() - start).nanoseconds) / 1e9
        promise.succeed(ScanReport(scanner: request.scanner, result: result, seconds: seconds, size: message.size))
    }

    private func reason(_ error: Error) -> String {
        ConnectFailure.reason(error, timeout: timeout, timedOut: "timed out after")
    }

    /// `2s`, `0.5s`: the configured value as a person wrote it.
    /// Hundredths of a second: what is left of a timeout after waiting for a `max_scans` slot is a hair
    /// under the configured value, which is what the reader should see.
    static func describe(_ amount: TimeAmount) -> String {
        let cs = (amount.nanoseconds + 5_000_000) / 10_000_000
        return cs % 100 == 0 ? "\(cs / 100)s" : "\(Double(cs) / 100)s"
    }
}

/// Feeds what the scanner sends to its answer reader; the end of the connection is an outcome too.
private final class ScannerAnswerHandler<Answer: ScannerAnswer>: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let connection: ScannerConnection
    private var answer: Answer

    init(connection: ScannerConnection, answer: Answer) {
        self.connection = connection
        self.answer = answer
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if let result = answer.take(unwrapInboundIn(data).readableBytesView) {
            connection.finish(result)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        connection.finish(answer.atEnd())
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}
