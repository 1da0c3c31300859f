#if canImport(Glibc)
import Glibc
#endif
import NIOCore
import NIOPosix
import SMTPGateCore

/// What a `remote-udp` lookup needs from the configuration, taken per session.
struct HelperLookupSettings {
    var port: Int
    var retries: Int
    var timeout: Double
    var secret: UInt32
    /// With a key the query is version 2 (authenticated); without, 0x0402.
    var key: HelperKey?
}

/// Asks smtpgate-helper on the router a connection came from (`mode remote-udp`). One per event loop: its
/// UDP sockets and pending queries are touched only there, so a lookup never blocks or locks anything.
/// A reply counts only from the address asked, with the cookie (0x0402) or nonce (v2) of a query still
/// waiting, and for v2 a valid HMAC and a fresh timestamp.
final class HelperClient {
    private struct Pending {
        let promise: EventLoopPromise<Origin>
        let helper: SocketAddress
        var packet: [UInt8]
        let source: HelperEndpoint
        let destination: HelperEndpoint
        let natSource: SocketAddress
        let settings: HelperLookupSettings
        var triesLeft: Int
        var timer: Scheduled<Void>?
        let started: NIODeadline
    }

    private let loop: EventLoop
    private let observer: ServiceObserver?
    private var sockets: [Bool: EventLoopFuture<Channel>] = [:]
    private var pending: [UInt64: Pending] = [:]

    init(loop: EventLoop, observer: ServiceObserver? = nil) {
        self.loop = loop
        self.observer = observer
    }

    func lookup(_ connection: Channel, settings: HelperLookupSettings) -> EventLoopFuture<Origin> {
        loop.preconditionInEventLoop()
        let asked = ask(connection, settings: settings)
        if let observer, asked.isFailedWithoutAsking {
            observer.observe(.helperLookup(.error, seconds: nil))
        }
        return asked.future
    }

    private struct Asked {
        let future: EventLoopFuture<Origin>
        /// Refused before any packet was sent: nothing was waited for.
        let isFailedWithoutAsking: Bool

        static func refused(_ loop: EventLoop, _ error: LookupError) -> Asked {
            Asked(future: loop.makeFailedFuture(error), isFailedWithoutAsking: true)
        }
    }

    private func ask(_ connection: Channel, settings: HelperLookupSettings) -> Asked {
        guard let peer = connection.remoteAddress, let local = connection.localAddress,
              let source = Self.endpoint(peer), let destination = Self.endpoint(local),
              source.family == destination.family else {
            return .refused(loop, LookupError(reason: "connection addresses unusable for a helper query"))
        }
        let helper: SocketAddress
        do {
            helper = try SocketAddress(ipAddress: source.address.text, port: settings.port)
        } catch {
            return .refused(loop, LookupError(reason: "helper address \(source.address.text) unusable",
                                                     clientText: "the NAT helper's address is unusable"))
        }
        var id: UInt64
        let packet: [UInt8]
        do {
            if let key = settings.key {
                repeat { id = UInt64.random(in: 0...UInt64.max) } while pending[id] != nil
                packet = try V2Packet.encodeQuery(key: key, nonce: id, timestamp: Self.now(), source: source, destination: destination)
            } else {
                repeat { id = UInt64(UInt32.random(in: 0...UInt32.max)) } while pending[id] != nil
                guard source.family == .v4 else {
                    return .refused(loop, LookupError(reason: "IPv6 needs helper protocol version 2 (remote_udp_key_file)"))
                }
                packet = try LegacyPacket.encodeQuery(cookie: UInt32(id), secret: settings.secret, source: source, destination: destination)
            }
        } catch {
            return .refused(loop, LookupError(reason: "cannot build the helper query: \(error)"))
        }
        let promise = loop.makePromise(of: Origin.self)
        pending[id] = Pending(promise: promise, helper: helper, packet: packet, source: source, destination: destination,
                              natSource: peer, settings: settings, triesLeft: settings.retries, timer: nil, started: loop.now)
        send(id)
        return Asked(future: promise.futureResult, isFailedWithoutAsking: false)
    }

    private func send(_ id: UInt64) {
        guard var p = pending[id] else { return }
        p.triesLeft -= 1
        p.timer = loop.scheduleTask(in: .nanoseconds(Int64(p.settings.timeout * 1e9))) { [self] in
            guard let p = pending[id] else { return }
            if p.triesLeft > 0 {
                send(renewed(id))
            } else {
                finish(id, .failure(LookupError(reason: "helper at \(RelaySession.describe(p.helper)) did not answer",
                                                clientText: "the NAT helper did not answer")), as: .timeout)
            }
        }
        pending[id] = p
        let packet = p.packet
        let helper = p.helper
        socket(v6: helper.protocol == .inet6).whenComplete { result in
            switch result {
            case .success(let ch):
                let envelope = AddressedEnvelope(remoteAddress: helper, data: ch.allocator.buffer(bytes: packet))
                ch.writeAndFlush(envelope, promise: nil)
            case .failure(let error):
                self.finish(id, .failure(LookupError(reason: "cannot open a UDP socket: \(error)")), as: .error)
            }
        }
    }

    /// A v2 retry is a new query (new nonce and timestamp): the helper would drop the same packet again as
    /// a replay when only its answer was lost. 0x0402 retries resend the packet, as smtp-gated did.
    private func renewed(_ id: UInt64) -> UInt64 {
        guard var p = pending[id], let key = p.settings.key else { return id }
        var next: UInt64
        repeat { next = UInt64.random(in: 0...UInt64.max) } while pending[next] != nil
        guard let packet = try? V2Packet.encodeQuery(key: key, nonce: next, timestamp: Self.now(),
                                                      source: p.source, destination: p.destination) else { return id }
        p.packet = packet
        pending[id] = nil
        pending[next] = p
        return next
    }

    private func socket(v6: Bool) -> EventLoopFuture<Channel> {
        if let s = sockets[v6] { return s }
        let s = DatagramBootstrap(group: loop)
            .channelInitializer { [self] ch in ch.pipeline.addHandler(HelperReplyHandler(client: self)) }
            .bind(host: v6 ? "::" : "0.0.0.0", port: 0)
        sockets[v6] = s
        s.whenFailure { [self] _ in sockets[v6] = nil }
        return s
    }

    /// A datagram arrived on one of the client's sockets.
    func received(_ envelope: AddressedEnvelope<ByteBuffer>) {
        let bytes = Array(envelope.data.readableBytesView)
        guard let (id, answer, ident) = decode(bytes), let p = pending[id], Self.same(p.helper, envelope.remoteAddress) else {
            return
        }
        switch answer {
        case .notFound:
            finish(id, .failure(LookupError(reason: "helper at \(RelaySession.describe(p.helper)) has no NAT entry for this connection",
                                            clientText: "the NAT helper has no entry for this connection")), as: .notFound)
        case .found(let client, let destination):
            guard let c = try? SocketAddress(ipAddress: client.address.text, port: Int(client.port)),
                  let d = try? SocketAddress(ipAddress: destination.address.text, port: Int(destination.port)) else {
                finish(id, .failure(LookupError(reason: "helper answered unusable addresses")), as: .error)
                return
            }
            let identText = ident.isEmpty ? nil : String(decoding: ident, as: UTF8.self)
            finish(id, .success(Origin(destination: d, client: c, natSource: p.natSource, ident: identText)), as: .found)
        }
    }

    private enum Answer {
        case found(HelperEndpoint, HelperEndpoint)
        case notFound
    }

    /// The query id a reply answers, if it is a well-formed reply to one of ours.
    private func decode(_ bytes: [UInt8]) -> (UInt64, Answer, [UInt8])? {
        if bytes.count == LegacyPacket.size, let r = try? LegacyPacket.decode(bytes, expecting: .reply),
           let p = pending[UInt64(r.cookie)], p.settings.key == nil {
            return (UInt64(r.cookie), r.kind == .found ? .found(r.source, r.destination) : .notFound, r.ident)
        }
        if bytes.count == V2Packet.size {
            // The nonce field only picks the candidate query; the HMAC under its key decides.
            let id = bytes[16..<24].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            guard let key = pending[id]?.settings.key,
                  let r = try? V2Packet.decode(bytes, key: key, now: Self.now(), expecting: .reply),
                  r.matchesReply(nonce: id) else { return nil }
            return (id, r.kind == .found ? .found(r.source, r.destination) : .notFound, r.ident)
        }
        return nil
    }

    private func finish(_ id: UInt64, _ result: Result<Origin, Error>, as outcome: ServiceObservation.HelperResult) {
        guard let p = pending.removeValue(forKey: id) else { return }
        p.timer?.cancel()
        observer?.observe(.helperLookup(outcome, seconds: Double((loop.now - p.started).nanoseconds) / 1e9))
        p.promise.completeWith(result)
    }

    static func endpoint(_ a: SocketAddress) -> HelperEndpoint? {
        guard let ip = a.normalisedIP.flatMap(IPAddress.init), let port = a.port else { return nil }
        return HelperEndpoint(ip, port: UInt16(port))
    }

    static func same(_ a: SocketAddress, _ b: SocketAddress) -> Bool {
        a.port == b.port && a.normalisedIP == b.normalisedIP
    }

    static func now() -> UInt64 {
        UInt64(max(0, time(nil)))
    }
}

private final class HelperReplyHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    private let client: HelperClient

    init(client: HelperClient) {
        self.client = client
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        client.received(unwrapInboundIn(data))
    }
}

/// `mode remote-udp`: the router's helper names the real client and destination.
struct RemoteUDPOrigin: OriginFinder {
    let client: HelperClient
    let settings: HelperLookupSettings

    func find(_ channel: Channel) -> EventLoopFuture<Origin> {
        client.lookup(channel, settings: settings)
    }
}
