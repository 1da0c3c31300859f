#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import NIOCore
import NIOPosix
import SMTPGateCore

/// The daemon's control socket (`control_path`): unix, owner-only, one request line per connection.
enum ControlServer {
    struct InUse: Error, CustomStringConvertible {
        let path: String
        var description: String { "another smtpgate answers on it; give each daemon its own control_path" }
    }

    static func bind(path: String, group: EventLoopGroup, service: ControlService) throws -> Channel {
        if ControlClient.isAnswering(path) { throw InUse(path: path) }
        let dir = path[..<(path.lastIndex(of: "/") ?? path.startIndex)]
        if !dir.isEmpty { _ = mkdir(String(dir), 0o755) }
        let old = umask(0o177)
        defer { umask(old) }
        return try ServerBootstrap(group: group)
            .childChannelInitializer { ch in
                ch.eventLoop.makeCompletedFuture { try ch.pipeline.syncOperations.addHandler(ControlHandler(service: service)) }
            }
            .bind(unixDomainSocketPath: path, cleanupExistingSocketFile: true)
            .wait()
    }
}

/// Reads one bounded line, answers it, closes. A client that sends too much or nothing gets an error or
/// the idle close; it can never hold more than one line of the daemon's memory.
final class ControlHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    static let render = DispatchQueue(label: "smtpgate.control")
    static let renderOnLoopMax = 500
    private let service: ControlService
    private var line: [UInt8] = []
    private var answered = false
    private var idle: Scheduled<Void>?

    init(service: ControlService) {
        self.service = service
    }

    func channelActive(context: ChannelHandlerContext) {
        let ch = context.channel
        idle = context.eventLoop.scheduleTask(in: .seconds(10)) { ch.close(promise: nil) }
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        idle?.cancel()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !answered else { return }
        var buf = unwrapInboundIn(data)
        let bytes = buf.readBytes(length: buf.readableBytes) ?? []
        if let lf = bytes.firstIndex(of: 0x0a) {
            line.append(contentsOf: bytes[..<lf])
            respond(context)
        } else {
            line.append(contentsOf: bytes)
            if line.count > ControlRequest.maxLine { respond(context) }
        }
    }

    private func respond(_ context: ChannelHandlerContext) {
        answered = true
        if line.last == 0x0d { line.removeLast() }
        let ch = context.channel
        let answer: EventLoopFuture<[ControlReply]>
        do {
            answer = service.handle(try ControlRequest(parsing: line), on: ch.eventLoop)
        } catch {
            answer = ch.eventLoop.makeSucceededFuture([.error("\(error)")])
        }
        // A status or reload may take a while: the idle close must not cut its answer.
        idle?.cancel()
        answer.whenComplete { result in
            let replies = (try? result.get()) ?? [.error("the request failed")]
            let send: @Sendable () -> Void = {
                var text = ""
                for r in replies { text += r.line + "\n" }
                ch.writeAndFlush(ch.allocator.buffer(string: text)).whenComplete { _ in ch.close(promise: nil) }
            }
            // A status of thousands of sessions is megabytes of lines: those are made off the event loop.
            if replies.count > Self.renderOnLoopMax { Self.render.async(execute: send) } else { send() }
        }
    }
}
