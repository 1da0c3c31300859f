import NIOCore
import SMTPGateCore

/// The client's end of a session: passes bytes and events to the session and holds reads back while the
/// upstream cannot take more (backpressure).
final class ClientSideHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let session: RelaySession

    init(session: RelaySession) {
        self.session = session
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        session.clientRead(unwrapInboundIn(data))
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        session.clientWritabilityChanged()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event {
            session.clientInputClosed()
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        session.clientInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }

    func read(context: ChannelHandlerContext) {
        if session.clientMayRead {
            context.read()
        } else {
            session.pendingClientRead = { context.read() }
        }
    }
}

/// The upstream's end of a session.
final class ServerSideHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let session: RelaySession

    init(session: RelaySession) {
        self.session = session
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        session.serverRead(unwrapInboundIn(data))
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        session.serverWritabilityChanged()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event {
            session.serverInputClosed()
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        session.serverInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }

    func read(context: ChannelHandlerContext) {
        if session.serverMayRead {
            context.read()
        } else {
            session.pendingServerRead = { context.read() }
        }
    }
}
