import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import SMTPGateCore

/// The read-only HTTP listener behind `admin_listen` (and the helper's `--admin-listen`): `/metrics`,
/// the status page and `/healthz`. Clients outside `allow` get 403 before their request is read; every
/// answer closes the connection, and connections are bounded in number and in idle time.
public enum AdminServer {
    /// Answers one route on the connection's event loop. The server answers 404/405 itself.
    public typealias Handler = @Sendable (AdminRoute, EventLoop) -> EventLoopFuture<AdminResponse>

    public static let maxConnections = 32
    public static let idleTimeout = TimeAmount.seconds(10)
    /// A client that sends or reads one byte every few seconds is never idle; this bounds its whole
    /// connection, request and answer together, so 32 of them cannot hold the listener.
    public static let connectionDeadline = TimeAmount.seconds(30)

    public static func bind(host: String, port: Int, allow: @escaping @Sendable () -> [CIDR], group: EventLoopGroup, handler: @escaping Handler) throws -> Channel {
        let open = NIOLockedValueBox(0)
        return try ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                guard let peer = channel.remoteAddress?.ipAddress, let bytes = AddressBytes.parse(peer),
                      allow().contains(where: { $0.contains(bytes) }) else {
                    return refuse(channel, .forbidden)
                }
                let admitted = open.withLockedValue { n -> Bool in
                    guard n < maxConnections else { return false }
                    n += 1
                    return true
                }
                guard admitted else { return refuse(channel, .busy) }
                channel.closeFuture.whenComplete { _ in open.withLockedValue { $0 -= 1 } }
                return channel.pipeline.configureHTTPServerPipeline(withPipeliningAssistance: false, withErrorHandling: true)
                    .flatMapThrowing {
                        try channel.pipeline.syncOperations.addHandler(IdleStateHandler(allTimeout: idleTimeout))
                        try channel.pipeline.syncOperations.addHandler(AdminHTTPHandler(handler: handler, deadline: connectionDeadline))
                    }
            }
            .bind(host: host, port: port)
            .wait()
    }

    /// A refused connection gets a whole HTTP answer, so curl and Prometheus show why.
    private static func refuse(_ channel: Channel, _ response: AdminResponse) -> EventLoopFuture<Void> {
        var buffer = channel.allocator.buffer(capacity: 128 + response.body.count)
        buffer.writeString("HTTP/1.1 \(response.status) \(response.reason)\r\nContent-Type: \(response.contentType)\r\n")
        buffer.writeString("Content-Length: \(response.body.count)\r\nConnection: close\r\n\r\n")
        buffer.writeBytes(response.body)
        channel.writeAndFlush(buffer).whenComplete { _ in channel.close(promise: nil) }
        return channel.eventLoop.makeSucceededVoidFuture()
    }
}

/// One request per connection: the head picks the route, the end of the request answers it. A request
/// body is not wanted; more than `maxBody` bytes of one closes the connection.
final class AdminHTTPHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    static let maxBody = 16 * 1024
    private let handler: AdminServer.Handler
    private var request: HTTPRequestHead?
    private var bodyBytes = 0
    private var answered = false
    private let deadline: TimeAmount
    private var expiry: Scheduled<Void>?

    init(handler: @escaping AdminServer.Handler, deadline: TimeAmount = AdminServer.connectionDeadline) {
        self.handler = handler
        self.deadline = deadline
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let channel = context.channel
        expiry = context.eventLoop.scheduleTask(in: deadline) { channel.close(promise: nil) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        expiry?.cancel()
        expiry = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            request = head
        case .body(let chunk):
            bodyBytes += chunk.readableBytes
            if bodyBytes > Self.maxBody, !answered {
                answered = true
                context.close(promise: nil)
            }
        case .end:
            guard let head = request, !answered else { return }
            answered = true
            answer(head, context: context)
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent { context.close(promise: nil) } else { context.fireUserInboundEventTriggered(event) }
    }

    private func answer(_ head: HTTPRequestHead, context: ChannelHandlerContext) {
        let route = AdminRoute.of(method: head.method.rawValue, uri: head.uri)
        let response: EventLoopFuture<AdminResponse>
        if !AdminRoute.isTrustedHost(head.headers["Host"]) {
            response = context.eventLoop.makeSucceededFuture(.misdirected)
        } else {
            switch route {
            case .notFound: response = context.eventLoop.makeSucceededFuture(.notFound)
            case .methodNotAllowed: response = context.eventLoop.makeSucceededFuture(.methodNotAllowed)
            default: response = handler(route, context.eventLoop)
            }
        }
        let headOnly = head.method == .HEAD
        let version = head.version
        response.hop(to: context.eventLoop).whenComplete { result in
            let r: AdminResponse
            switch result {
            case .success(let ok): r = ok
            case .failure: r = .text(500, "Internal Server Error", "the daemon could not answer; see its log")
            }
            var headers = HTTPHeaders()
            headers.add(name: "Content-Type", value: r.contentType)
            headers.add(name: "Content-Length", value: "\(r.body.count)")
            headers.add(name: "Cache-Control", value: "no-store")
            headers.add(name: "X-Content-Type-Options", value: "nosniff")
            if r.contentType.hasPrefix("text/html") {
                // The page has no script and loads nothing: say so, so a browser refuses anything injected.
                headers.add(name: "Content-Security-Policy", value: "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
            }
            headers.add(name: "Connection", value: "close")
            let status = HTTPResponseStatus(statusCode: r.status, reasonPhrase: r.reason)
            context.write(self.wrapOutboundOut(.head(HTTPResponseHead(version: version, status: status, headers: headers))), promise: nil)
            if !headOnly, !r.body.isEmpty {
                context.write(self.wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: r.body)))), promise: nil)
            }
            context.writeAndFlush(self.wrapOutboundOut(.end(nil))).whenComplete { _ in context.close(promise: nil) }
        }
    }
}
