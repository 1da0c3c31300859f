// The floor for instructions per session: the least a SwiftNIO program does to relay one TCP connection
// (accept, connect upstream, copy both ways, close both), with none of smtpgate's SMTP, logging or policy.
// bench/run.sh's instructions section counts it under callgrind next to smtpgate and haproxy.
//   bare-relay --listen 127.0.0.1:PORT --to 127.0.0.1:PORT
import Dispatch
import Glibc
import NIOCore
import NIOPosix

/// Writes what one side reads to the other; closes the other when one side ends.
final class Glue: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    var peer: Channel?

    init(peer: Channel?) {
        self.peer = peer
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        peer?.write(unwrapInboundIn(data), promise: nil)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        peer?.flush()
    }

    func channelInactive(context: ChannelHandlerContext) {
        peer?.close(promise: nil)
    }
}

/// The client's end: connects upstream once it is active and reads the client only when that is open, so
/// nothing is written to a channel that is not registered yet.
final class ClientGlue: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    let glue = Glue(peer: nil)
    let upstream: (String, Int)

    init(upstream: (String, Int)) {
        self.upstream = upstream
    }

    func channelActive(context: ChannelHandlerContext) {
        let inbound = context.channel
        ClientBootstrap(group: context.eventLoop)
            .channelInitializer { $0.pipeline.addHandler(Glue(peer: inbound)) }
            .connect(host: upstream.0, port: upstream.1)
            .whenComplete { [glue] result in
                switch result {
                case .success(let outbound):
                    glue.peer = outbound
                    inbound.setOption(.autoRead, value: true).whenComplete { _ in }
                case .failure(let e):
                    fputs("bare-relay: \(e)\n", stderr)
                    inbound.close(promise: nil)
                }
            }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) { glue.channelRead(context: context, data: data) }
    func channelReadComplete(context: ChannelHandlerContext) { glue.channelReadComplete(context: context) }
    func channelInactive(context: ChannelHandlerContext) { glue.channelInactive(context: context) }
}

func endpoint(_ text: String) -> (String, Int) {
    guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]) else {
        fatalError("expected HOST:PORT, got \(text)")
    }
    return (String(text[..<colon]), port)
}

var arguments = CommandLine.arguments.dropFirst().makeIterator()
var listen = ("127.0.0.1", 0), target = ("127.0.0.1", 0)
while let a = arguments.next() {
    switch a {
    case "--listen": listen = endpoint(arguments.next() ?? "")
    case "--to": target = endpoint(arguments.next() ?? "")
    default: fatalError("unknown argument \(a)")
    }
}
let group = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
let upstream = target
let server = try ServerBootstrap(group: group)
    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
    .childChannelOption(.autoRead, value: false)
    .childChannelInitializer { $0.pipeline.addHandler(ClientGlue(upstream: upstream)) }
    .bind(host: listen.0, port: listen.1)
    .wait()
let stop = DispatchSource.makeSignalSource(signal: SIGTERM)
signal(SIGTERM, SIG_IGN)
stop.setEventHandler { server.close(promise: nil) }
stop.resume()
try server.closeFuture.wait()
try group.syncShutdownGracefully()
