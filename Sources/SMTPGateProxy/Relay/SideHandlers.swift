import NIOCore
import SMTPGateCore

/// One end of a session (the client's or the upstream's): passes bytes and events to the session and holds
/// reads back while the other end cannot take more (backpressure through the outbound `read`).
final class RelaySideHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    enum Side { case client, server }

    private let session: RelaySession
    private let side: Side

    init(session: RelaySession, side: Side) {
        self.session = session
        self.side = side
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = unwrapInboundIn(data)
        side == .client ? session.clientRead(bytes) : session.serverRead(bytes)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        side == .client ? session.clientWritabilityChanged() : session.serverWritabilityChanged()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event {
            side == .client ? session.clientInputClosed() : session.serverInputClosed()
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        side == .client ? session.clientInactive() : session.serverInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }

    func read(context: ChannelHandlerContext) {
        switch side {
        case .client:
            if session.clientMayRead { context.read() } else { session.pendingClientRead = { context.read() } }
        case .server:
            if session.serverMayRead { context.read() } else { session.pendingServerRead = { context.read() } }
        }
    }
}
