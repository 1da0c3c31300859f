import NIOCore
import NIOPosix
import SMTPGateCore
import SMTPGateRuntime

/// The listening socket every SMTP listener and forward binds: SO_REUSEPORT (one socket per event loop),
/// the backlog, tproxy when the mode asks, the descriptor reserve, and the accepted connections' options.
enum ListeningSocket {
    static func bootstrap(loop: EventLoop, config: Config, listener: String, events: EventLog) -> ServerBootstrap {
        var bootstrap = ServerBootstrap(group: loop)
        if config.mode == .tproxy {
            bootstrap = bootstrap.serverChannelOption(Transparent.option(v6: config.bindAddress.family == .v6), value: 1)
        }
        return bootstrap
            .serverChannelOption(.backlog, value: Int32(config.connectQueue))
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelOption(ChannelOptions.Types.SocketOption(level: NIOBSDSocket.OptionLevel(rawValue: SOL_SOCKET), name: NIOBSDSocket.Option(rawValue: SO_REUSEPORT)), value: 1)
            // This bind, unlike NIO's async one, adds nothing for failing accepts: without it EMFILE spins the loop.
            .serverChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(DescriptorReserve(listener: listener, log: { events.record($0) }))
                }
            }
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
    }
}
