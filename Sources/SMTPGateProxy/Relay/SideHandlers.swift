import NIOCore
import SMTPGateCore

/// What a side handler drives: an SMTP relay session or a plain TCP forward. Both move bytes between a
/// client and an upstream with the same backpressure and half-close.
protocol RelayEnds: AnyObject {
    func clientRead(_ buffer: ByteBuffer)
    func serverRead(_ buffer: ByteBuffer)
    func clientWritabilityChanged()
    func serverWritabilityChanged()
    func clientInputClosed()
    func serverInputClosed()
    func clientInactive()
    func serverInactive()
    var clientMayRead: Bool { get }
    var serverMayRead: Bool { get }
    /// A read the handler held back, issued once the other end can take more.
    var pendingClientRead: (() -> Void)? { get set }
    var pendingServerRead: (() -> Void)? { get set }
}

enum RelaySide { case client, server }

/// One end of a session (the client's or the upstream's): passes bytes and events to the session and holds
/// reads back while the other end cannot take more (backpressure through the outbound `read`).
final class RelaySideHandler<Session: RelayEnds>: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let session: Session
    private let side: RelaySide

    init(session: Session, side: RelaySide) {
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
