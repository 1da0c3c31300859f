#if canImport(Glibc)
import Glibc
#endif
import NIOCore
import NIOPosix
import SMTPGateCore
import SMTPGateRuntime

/// Everything a session needs from the daemon, fixed when the session opens (a reload applies to new
/// sessions only).
struct SessionEnvironment {
    let config: Config
    let settings: SessionSettings
    /// Where the session's events go: the log, the action script, and the policies that learn from them.
    let bus: ProxyEventBus
    let registry: SessionRegistry
    let listenerName: String
    let finder: OriginFinder
    let admission: AdmissionPipeline<AdmissionRequest>
    /// Locks and rate limits, when configured.
    let abuse: ListenerAbuse?
    /// Set when a scanner is configured.
    let scanning: Scanning?
    /// Set when a restriction asks DNS.
    var resolver: Resolver? = nil
    var maps = AccessMapSet()
    var policyServices: PolicyServiceClients? = nil
}

/// What a scanning session needs besides the scanners: where and how messages are spooled.
struct Scanning {
    let services: ScanServices
    let spoolPath: String
    let spoolMemory: Int
    let spoolPerm: Int
    let leaveOn: Config.SpoolLeaveOn
    let pool: NIOThreadPool
}

/// One client connection and its upstream, both on the client's event loop. The SMTP decisions are the
/// `SessionMachine`'s; this class moves bytes, keeps time and applies backpressure both ways.
final class RelaySession: RegisteredSession, RelayEnds {
    let id: String
    let client: Channel
    private(set) var server: Channel?
    private var machine: SessionMachine
    private let env: SessionEnvironment
    private var context: SessionContext
    private let started = NIODeadline.now()
    private var lastActivity = NIODeadline.now()
    private var phase = SessionMachine.Phase.relay
    private var phaseStarted = NIODeadline.now()
    private var timer: Scheduled<Void>?
    private var bytesIn = 0
    private var bytesOut = 0
    private var clientPaused = false
    private var finished = false
    /// `preamble`: connected, but XCLIENT is still being negotiated; the client waits.
    private enum Upstream { case connecting, preamble, open, gone }
    private var upstream = Upstream.connecting
    /// The `.beforeGreeting` checks have not all answered: nothing is read from the upstream, so its
    /// greeting cannot reach a client they may still refuse.
    private var greetingHeld = false
    /// `earlytalker`: until the greeting has gone out the client is read, and anything it sends refuses it.
    private var watchingEarlyTalk = false
    /// `policy_mode warn`: what an early talker sent, held until the client would have been read.
    private var earlyBytes: ByteBuffer?
    /// `earlytalker_wait`: the upstream connect, delayed.
    private var delayedConnect: Scheduled<Void>?
    private var xclient: XClientPreamble?
    private var origin: Origin?
    /// The message being received or scanned, when scanning.
    private var spool: Spool?
    private var spoolPaused = false
    /// A finished message waits for its verdict.
    private var scanInFlight = false
    private var messages = 0
    /// Answers the machine's questions (`PolicyDecision.ask`) when its policy has something to wait for.
    private var commandPolicy: SessionPolicy?
    /// `auth_skip dnsbl`: the listing is reported (logged, locked for) the first time it refuses a MAIL.
    private var listingReported = false
    /// Findings of the command policies (`regex_*`, `spf`) already reported in this session, by lock reason.
    private var reportedFindings: Set<String> = []
    var pendingClientRead: (() -> Void)?
    var pendingServerRead: (() -> Void)?

    init(id: String, client: Channel, env: SessionEnvironment) {
        self.id = id
        self.client = client
        self.env = env
        self.machine = SessionMachine(settings: env.settings)
        self.context = SessionContext(
            id: id, listener: env.listenerName,
            client: client.remoteAddress.map(Self.describe) ?? "-",
            local: client.localAddress.map(Self.describe) ?? "-",
            destination: "-")
        context.facts.localIP = client.localAddress?.normalisedIP
        context.facts.localPort = client.localAddress?.port
        context.facts.started = Double(time(nil))
    }

    /// `ADDR:PORT` for the log, `[ADDR]:PORT` for IPv6; an IPv4 client on an IPv6 listener shows as IPv4.
    static func describe(_ a: SocketAddress) -> String {
        guard let shown = a.normalisedIP, let port = a.port else { return "\(a)" }
        // A byte scan: String.contains(String) is Foundation's locale-aware search, a hot spot per connection.
        return shown.utf8.contains(UInt8(ascii: ":")) ? "[\(shown)]:\(port)" : "\(shown):\(port)"
    }

    // MARK: - Start

    /// Finds where the connection was going, admits the real client, then connects there.
    func start() {
        armTimer()
        env.finder.find(client).whenComplete { [self] result in
            guard !finished else { return }
            switch result {
            case .failure(let error):
                let lookup = error as? LookupError ?? LookupError(reason: "\(error)")
                refuse(.lookupFailed(reason: lookup.reason, clientText: lookup.clientText))
            case .success(let origin):
                begin(origin)
            }
        }
    }

    private func begin(_ origin: Origin) {
        self.origin = origin
        context.client = Self.describe(origin.client)
        context.natSource = origin.natSource.map(Self.describe)
        context.ident = origin.ident.map(LogEscape.escape)
        context.destination = Self.describe(origin.destination)
        context.facts.clientIP = origin.client.normalisedIP
        context.facts.clientPort = origin.client.port
        context.facts.destinationIP = origin.destination.normalisedIP
        context.facts.destinationPort = origin.destination.port
        context.facts.ident = origin.ident
        let keys = context.facts.clientIP.flatMap(AddressBytes.parse).flatMap { env.abuse?.keys(address: $0, ident: origin.ident) }
        context.facts.lockKey = keys?.lock
        context.facts.rateKey = keys?.rate
        env.bus.publish(.opened(context))
        env.admission.run(.originKnown, AdmissionRequest(session: self, origin: origin, keys: keys)) { [self] refusal in
            guard !finished else { return }
            if let refusal {
                refuse(refusal)
            } else if let (to, rule) = redirection, env.config.policyMode == .warn {
                env.bus.publish(.redirected(context, to: Self.describe(to), rule: rule + " (policy_mode warn: not done)"))
                proceed(origin, keys: keys)
            } else if let (to, rule) = redirection {
                var redirected = origin
                redirected.destination = to
                self.origin = redirected
                env.bus.publish(.redirected(context, to: Self.describe(to), rule: rule))
                // From here on the session's destination is the MTA it goes to (close, connect_failed lines).
                context.destination = Self.describe(to)
                context.facts.destinationIP = to.normalisedIP
                context.facts.destinationPort = to.port
                proceed(redirected, keys: keys)
            } else {
                proceed(origin, keys: keys)
            }
        }
    }

    /// `destination_restrictions` REDIRECT: the MTA the session goes to instead. Set by the admission check.
    private var redirection: (SocketAddress, String)?

    func redirect(to: SocketAddress, rule: String) {
        redirection = (to, rule)
    }

    private func proceed(_ origin: Origin, keys: (lock: ClientKey, rate: ClientKey)?) {
        let warnOnly = env.config.policyMode == .warn
        let abuse = env.abuse.map { abuse in
            AbusePolicy(abuse: abuse, lockKey: context.facts.lockKey, rateKey: context.facts.rateKey,
                        limited: { [unowned self] in if !warnOnly { env.bus.publish(.rateLimited(context, $0)) } })
        }
        let config = env.config
        var policy = SessionPolicy(gate: AuthGate(requirement: config.authRequire),
                                   regex: config.regexRules.isEmpty ? nil : RegexPolicy(rules: config.regexRules),
                                   regexSkippedWhenAuthenticated: config.authSkip.contains(.regex),
                                   restrictions: RestrictionRunner(config: config, resolver: env.resolver, maps: env.maps,
                                                                   services: env.policyServices, origin: origin, session: id),
                                   abuse: abuse,
                                   listed: { [unowned self] in reportHeldListing($0, transactions: $1.transactions) },
                                   refused: { [unowned self] in env.bus.publish(.commandRefused(context, $0)) },
                                   found: { [unowned self] kind, state in
                                       // Once per session and rule: a client repeating a refused command must not
                                       // start an action script each time (a lock, when lock_on names it, is made at the first).
                                       guard reportedFindings.insert(kind.lockReason).inserted else { return }
                                       env.bus.publish(.found(context, Finding(kind: kind, helo: state.helo, mailFrom: state.mailFrom,
                                                                               recipients: state.recipients, transaction: state.transactions)))
                                   })
        policy.warnOnly = warnOnly
        if config.spf != .off {
            policy.spf = SPFRunner(mode: config.spf, resolver: env.resolver,
                                   clientIP: origin.client.ipBytes,
                                   fixedIP: config.spfFixedIP.flatMap(AddressBytes.parse),
                                   outgoingIP: { [unowned self] in
                                       server?.localAddress?.ipBytes
                                   },
                                   logOnly: config.spfLogOnly, receivedHeader: config.spfReceivedHeader, hostName: env.settings.proxyName)
            policy.spfSkippedWhenAuthenticated = config.authSkip.contains(.spf)
            policy.spfChecked = { [unowned self] v in env.bus.publish(.spfChecked(context, v)) }
        }
        policy.noted = { [unowned self] point, note in env.bus.publish(.policyNote(context, point, note)) }
        if !policy.isEmpty || env.config.authSkip.contains(.dnsbl) {
            commandPolicy = policy
            machine.policy = { [unowned self] point, state in commandPolicy?.decide(point, state) ?? .relay }
        }
        let host = origin.client.normalisedIP ?? "-"
        machine.natHeader = NatHeader.make(
            type: env.config.natHeaderType, name: env.config.natHeader, client: host, clientPort: origin.client.port,
            ident: origin.ident, proxyName: env.settings.proxyName, session: id, abuse: env.config.abuse)
        greetingHeld = true
        watchingEarlyTalk = env.config.earlyTalker
        env.admission.run(.beforeGreeting, AdmissionRequest(session: self, origin: origin, keys: keys)) { [self] refusal in
            greetingHeld = false
            guard !finished else { return }
            if let refusal {
                refuse(refusal)
            } else {
                clientWritabilityChanged()
                clientMayReadChanged()
            }
        }
        // Refused at once (a check that did not need to wait): no upstream connection is made.
        guard !ended else { return }
        if watchingEarlyTalk {
            // Read now: what the client sent while its origin was looked up counts as early talk too.
            clientMayReadChanged()
            if env.config.earlyTalkerWait > 0 {
                delayedConnect = client.eventLoop.scheduleTask(in: .nanoseconds(Int64(env.config.earlyTalkerWait * 1e9))) { [self] in
                    delayedConnect = nil
                    guard !ended else { return }
                    connect(origin)
                }
                return
            }
        }
        guard !ended else { return }
        connect(origin)
    }

    /// The session is over, or its machine has closed it (a refusal whose close has not completed yet).
    private var ended: Bool { finished || machine.phase == .closed }

    private func connect(_ origin: Origin) {
        let config = env.config
        var bootstrap = ClientBootstrap(group: client.eventLoop)
            .channelOption(.allowRemoteHalfClosure, value: true)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .connectTimeout(.nanoseconds(Int64(config.timeoutConnect * 1e9)))
            .channelInitializer { [self] ch in
                ch.pipeline.addHandler(RelaySideHandler(session: self, side: .server))
            }
        if config.transparentSource {
            bootstrap = bootstrap.channelOption(Transparent.option(for: origin.client), value: 1)
                .bind(to: Transparent.anyPort(origin.client))
        } else if let out = config.outgoingAddr, let local = try? SocketAddress(ipAddress: out.text, port: 0) {
            bootstrap = bootstrap.bind(to: local)
        }
        bootstrap.connect(to: origin.destination).whenComplete { [self] result in
            switch result {
            case .success(let ch):
                if finished {
                    ch.close(promise: nil)
                    return
                }
                server = ch
                upstreamConnected(ch, origin: origin)
            case .failure(let error):
                upstreamFailed(Self.reason(error))
            }
        }
    }

    /// The upstream cannot be used (no connection, or XCLIENT refused): 421 4.4.1 to the client.
    private func upstreamFailed(_ reason: String) {
        upstream = .gone
        guard !finished else { return }
        refuse(.connectFailed(destination: context.destination, reason: reason))
    }

    /// The one way a session is turned away before its dialogue: the event, then the machine's reply.
    /// What a warning about this connection is reported with (`policy_mode warn`), at any stage.
    var reportContext: SessionContext { context }

    /// Called by the `dnsbl` admission check before the greeting, on this loop.
    func holdListing(_ v: DNSBLVerdict) {
        commandPolicy?.gate.listing = v
    }

    private func reportHeldListing(_ v: DNSBLVerdict, transactions: Int) {
        guard !listingReported else { return }
        listingReported = true
        env.bus.publish(.refused(context, .dnsblListed(v)))
        env.bus.publish(.found(context, Finding(kind: .dnsbl(score: v.score, zones: v.zones), transaction: transactions)))
    }

    private func refuse(_ refusal: Refusal) {
        env.bus.publish(.refused(context, refusal))
        switch refusal {
        case .tooManyFromHost(let limit):
            env.bus.publish(.found(context, Finding(kind: .maxHost(limit: limit), transaction: machine.transactions)))
        case .tooManyFromIdent(let limit):
            env.bus.publish(.found(context, Finding(kind: .maxIdent(limit: limit), transaction: machine.transactions)))
        case .dnsblListed(let v):
            env.bus.publish(.found(context, Finding(kind: .dnsbl(score: v.score, zones: v.zones), transaction: machine.transactions)))
        case .earlyTalker(let bytes):
            env.bus.publish(.found(context, Finding(kind: .earlyTalk(bytes: bytes), transaction: machine.transactions)))
        default:
            break
        }
        apply(machine.refuse(refusal), input: nil, fromClient: false)
    }

    /// What goes to the upstream before the client's first byte: a PROXY header, or the XCLIENT exchange.
    private func upstreamConnected(_ ch: Channel, origin: Origin) {
        let config = env.config
        if config.mode == .fixedXClient, let ip = origin.client.normalisedIP.flatMap(IPAddress.init),
           let port = origin.client.port {
            xclient = XClientPreamble(heloName: env.settings.proxyName, client: ip, clientPort: port)
            upstream = .preamble
            return
        }
        if config.proxyProtocol, let header = ProxyHeader.make(client: origin.client, local: client.localAddress) {
            ch.writeAndFlush(ch.allocator.buffer(bytes: header), promise: nil)
        }
        upstream = .open
        serverWritabilityChanged()
    }

    static func reason(_ error: Error) -> String {
        if let e = error as? NIOConnectionError, let first = e.connectionErrors.first {
            return reason(first.error)
        }
        if let e = error as? IOError {
            switch e.errnoCode {
            case ECONNREFUSED: return "connection refused"
            case ETIMEDOUT: return "timed out"
            case EHOSTUNREACH: return "host unreachable"
            case ENETUNREACH: return "network unreachable"
            case EADDRNOTAVAIL: return "outgoing address not available"
            default: return "error \(e.errnoCode)"
            }
        }
        if let e = error as? ChannelError, case .connectTimeout = e { return "timed out" }
        return "\(error)"
    }

    // MARK: - Flow control (called by the handlers' outbound `read`)

    /// Once the upstream is gone the client is still read: the takeover responder answers it.
    var clientMayRead: Bool {
        guard !clientPaused, !spoolPaused, !finished else { return false }
        if watchingEarlyTalk, !machine.greeted { return true }
        // Nothing of a client that may yet be refused (a DNSBL listing) goes to the MTA.
        if greetingHeld { return false }
        switch upstream {
        case .connecting, .preamble: return false
        case .open: return server?.isWritable ?? false
        case .gone: return true
        }
    }

    var serverMayRead: Bool { !finished && !greetingHeld && client.isWritable }

    func serverWritabilityChanged() {
        clientMayReadChanged()
    }

    private func clientMayReadChanged() {
        if clientMayRead, let early = earlyBytes {
            earlyBytes = nil
            let out = early.withUnsafeReadableBytes { machine.clientBytes($0) }
            apply(out, input: early, fromClient: true)
        }
        if clientMayRead, let r = pendingClientRead {
            pendingClientRead = nil
            r()
        }
    }

    func clientWritabilityChanged() {
        if serverMayRead, let r = pendingServerRead {
            pendingServerRead = nil
            r()
        }
    }

    // MARK: - Input

    func clientRead(_ buffer: ByteBuffer) {
        guard !finished else { return }
        bytesIn += buffer.readableBytes
        lastActivity = .now()
        if watchingEarlyTalk, !machine.greeted {
            guard machine.phase != .closed else { return }
            guard env.config.policyMode == .warn else {
                refuse(.earlyTalker(bytes: buffer.readableBytes))
                return
            }
            // Warned only: the bytes wait, unread by the machine, until the session would have read them.
            env.bus.publish(.warned(context, .earlyTalker(bytes: buffer.readableBytes)))
            watchingEarlyTalk = false
            earlyBytes = buffer
            return
        }
        let out = buffer.withUnsafeReadableBytes { machine.clientBytes($0) }
        apply(out, input: buffer, fromClient: true)
    }

    func serverRead(_ buffer: ByteBuffer) {
        guard !finished else { return }
        lastActivity = .now()
        if upstream == .preamble {
            preambleRead(buffer)
            return
        }
        let out = buffer.withUnsafeReadableBytes { machine.serverBytes($0) }
        apply(out, input: buffer, fromClient: false)
    }

    private func preambleRead(_ buffer: ByteBuffer) {
        guard var preamble = xclient, let server else { return }
        let step = buffer.withUnsafeReadableBytes { preamble.serverBytes($0) }
        xclient = preamble
        switch step {
        case .waiting:
            break
        case .send(let bytes):
            server.writeAndFlush(server.allocator.buffer(bytes: bytes), promise: nil)
        case .failed(let why):
            xclient = nil
            upstreamFailed(why)
        case .done(let greeting, let rest):
            xclient = nil
            upstream = .open
            apply(machine.serverBytes(greeting), input: nil, fromClient: false)
            if rest < buffer.readableBytes, let tail = buffer.getSlice(at: buffer.readerIndex + rest, length: buffer.readableBytes - rest) {
                serverRead(tail)
            }
            serverWritabilityChanged()
        }
    }

    func clientInputClosed() {
        guard !finished else { return }
        apply(machine.clientClosed(), input: nil, fromClient: true)
    }

    func serverInputClosed() {
        guard !finished else { return }
        apply(machine.serverClosed(), input: nil, fromClient: false)
    }

    func clientInactive() {
        if !finished {
            apply(machine.clientClosed(), input: nil, fromClient: true)
        }
        finish()
    }

    func serverInactive() {
        upstream = .gone
        guard !finished else { return }
        apply(machine.serverClosed(), input: nil, fromClient: false)
        serverWritabilityChanged()
    }

    func snapshot() -> SessionSnapshot {
        let state: String
        switch (origin, upstream, phase) {
        case (nil, _, _): state = "lookup"
        case (_, .connecting, _): state = "connecting"
        case (_, .preamble, _): state = "xclient"
        case (_, .gone, _), (_, _, .closed): state = "closing"
        case (_, .open, .relay): state = "relay"
        case (_, .open, .takeover): state = "takeover"
        case (_, .open, .blind): state = "blind"
        }
        return SessionSnapshot(id: id, listener: context.listener, kind: .smtp, client: context.client,
                               destination: context.destination, state: state, ident: context.facts.ident,
                               helo: env.config.logHelo ? machine.helo : nil, transactions: machine.transactions,
                               bytesIn: bytesIn, bytesOut: bytesOut,
                               age: Double((NIODeadline.now() - started).nanoseconds) / 1e9)
    }

    func shutdown() {
        guard !finished else { return }
        apply(machine.shutdown(), input: nil, fromClient: false)
    }

    // MARK: - Output

    private func apply(_ out: MachineOutput, input: ByteBuffer?, fromClient: Bool) {
        for e in out.events {
            env.bus.publish(.session(context, e))
            if case .transaction(let t) = e, t.abort == .sizeLimit {
                env.bus.publish(.found(context, Finding(
                    kind: .sizeLimit(limit: env.settings.sizeLimit), helo: machine.helo, mailFrom: t.mailFrom,
                    recipients: t.recipientCount, size: t.size, transaction: t.number ?? machine.transactions)))
            }
        }
        if env.scanning != nil { spoolMessage(out, input: fromClient ? input : nil) }
        if out.pauseClient { clientPaused = true }
        let toServer = server.map { write(out.toServer, to: $0, input: fromClient ? input : nil, closing: out.closeServer) }
        let toClient = write(out.toClient, to: client, input: fromClient ? nil : input, closing: out.closeClient)
        bytesOut += toClient.count
        if out.resumeClient {
            clientPaused = false
            serverWritabilityChanged()
        }
        if machine.phase != phase {
            phase = machine.phase
            phaseStarted = .now()
            armTimer()
        }
        // Closing last: a close can complete at once and end the session, which logs its totals.
        if let server {
            if out.closeServer { close(server, after: toServer?.last) }
            if out.halfCloseServer { server.close(mode: .output, promise: nil) }
        }
        if out.closeClient { close(client, after: toClient.last) }
        // Last of all: a verdict can come at once (a skipped scan) and its dot must follow this output's body.
        if out.messageEnd != nil, let scanning = env.scanning, let spool { scan(spool, scanning) }
        for question in out.questions { ask(question) }
    }

    /// The machine holds the command (or the final dot) until the policy's answer comes back on this loop.
    private func ask(_ point: PolicyPoint) {
        let answer = commandPolicy?.resolve(point, machine.policyState, on: client.eventLoop) ?? client.eventLoop.makeSucceededFuture(.relay)
        answer.whenComplete { [self] result in
            guard !finished else { return }
            // A policy that cannot answer lets the command through, as a missing policy would.
            let decision = (try? result.get()) ?? .relay
            apply(machine.answer(decision), input: nil, fromClient: false)
            armTimer()
        }
    }

    /// Writes without a promise each (they cost an allocation per write); only a write that a close must
    /// wait for gets one.
    private func write(_ segments: [MachineOutput.Segment], to channel: Channel, input: ByteBuffer?,
                       closing: Bool) -> (count: Int, last: EventLoopFuture<Void>?) {
        var total = 0
        var last: EventLoopFuture<Void>?
        for (n, seg) in segments.enumerated() {
            let buf: ByteBuffer
            switch seg {
            case .input(let r):
                guard let input, let slice = input.getSlice(at: input.readerIndex + r.lowerBound, length: r.count) else { continue }
                buf = slice
            case .bytes(let b):
                buf = channel.allocator.buffer(bytes: b)
            }
            total += buf.readableBytes
            if closing, n == segments.count - 1 {
                last = channel.write(buf)
            } else {
                channel.write(buf, promise: nil)
            }
        }
        if !segments.isEmpty { channel.flush() }
        return (total, last)
    }

    private func close(_ channel: Channel, after write: EventLoopFuture<Void>?) {
        if let write {
            write.whenComplete { _ in channel.close(promise: nil) }
        } else {
            channel.close(promise: nil)
        }
    }

    // MARK: - Scanning

    private func spoolMessage(_ out: MachineOutput, input: ByteBuffer?) {
        guard let scanning = env.scanning else { return }
        if out.messageStart {
            spool?.remove()
            messages += 1
            let s = Spool(path: "\(scanning.spoolPath)/\(id)-\(messages).msg", memoryLimit: scanning.spoolMemory,
                          loop: client.eventLoop, pool: scanning.pool, mode: scanning.spoolPerm)
            s.onDrained = { [weak self] in self?.spoolDrained() }
            if let name = env.config.spoolHeader {
                s.prepend(header: SpoolHeader.make(name: name, context, proxyName: env.settings.proxyName))
            }
            spool = s
        }
        if let spool, !out.body.isEmpty {
            for seg in out.body {
                switch seg {
                case .input(let r):
                    input?.withUnsafeReadableBytes { spool.append(UnsafeRawBufferPointer(rebasing: $0[r])) }
                case .bytes(let b):
                    b.withUnsafeBytes { spool.append($0) }
                }
            }
            if spool.isBackedUp { spoolPaused = true }
        }
    }

    private func spoolDrained() {
        guard spoolPaused else { return }
        spoolPaused = false
        serverWritabilityChanged()
    }

    /// Waits for the spool, runs the scanners, then tells the machine; the client's next commands wait.
    private func scan(_ spool: Spool, _ scanning: Scanning) {
        scanInFlight = true
        armTimer()
        let loop = client.eventLoop
        let trans = machine.currentTransaction
        // The scans never fail (a scanner's failure is its report): a failure here is the spool's.
        spool.finish().flatMap {
            scanning.services.scan(spool, on: loop, abandoned: { [weak self] in self?.finished ?? true })
        }.whenComplete { [self] outcome in
            guard !finished, self.spool === spool else {
                spool.remove()
                return
            }
            self.spool = nil
            scanInFlight = false
            let verdict: MessageVerdict
            let summary: ScanSummary
            switch outcome {
            case .success(let reports):
                for r in reports {
                    env.bus.publish(.scanned(context, transaction: trans, r, scanning.services.policy))
                }
                (verdict, summary) = scanning.services.policy.verdict(reports)
            case .failure(let error):
                env.bus.publish(.spoolFailed(context, error: (error as? SpoolError)?.reason ?? "\(error)"))
                summary = ScanSummary(result: .error)
                // The detail (paths, errno) is for the log; the client learns only that the spool failed.
                verdict = scanning.services.policy.ignoreErrors ? .deliver : .notScanned("spool: cannot store the message", spool: true)
            }
            settle(spool, summary: summary, transaction: trans, scanning)
            apply(machine.verdict(verdict, scan: summary), input: nil, fromClient: false)
            armTimer()
        }
    }

    /// Keeps or removes the spool (`spool_leave_on`) and runs the action script for what was found.
    private func settle(_ spool: Spool, summary: ScanSummary, transaction: Int?, _ scanning: Scanning) {
        let leave = scanning.leaveOn
        let keep: Bool
        let kind: Finding.Kind?
        switch summary.result {
        case .virus: (keep, kind) = (leave.contains(.virus), .virus(name: summary.virus ?? ""))
        case .spam: (keep, kind) = (leave.contains(.spam), .spam(score: summary.score ?? 0))
        case .error: (keep, kind) = (leave.contains(.error), nil)
        case .clean, .skipped: (keep, kind) = (false, nil)
        }
        // Taken now: the transaction ends with the verdict, before a kept spool is written.
        let finding = kind.map {
            Finding(kind: $0, helo: machine.helo, mailFrom: machine.currentMailFrom, recipients: machine.currentRecipients,
                    size: spool.size, transaction: transaction ?? machine.transactions)
        }
        guard keep || leave.contains(.always) else {
            spool.remove()
            if let finding { env.bus.publish(.found(context, finding)) }
            return
        }
        spool.keep().whenComplete { [self] result in
            if case .failure(let error) = result {
                env.bus.publish(.spoolFailed(context, error: "\(error)"))
            }
            if var kept = finding {
                kept.spoolName = spool.hasFile ? spool.path : nil
                env.bus.publish(.found(context, kept))
            }
        }
    }

    // MARK: - Time

    private var currentTimeout: TimeAmount {
        let seconds: Double
        switch phase {
        case .relay where scanInFlight:
            // The scanners bound their own time; the idle timer must not cut a slow scan short.
            seconds = max(env.config.timeoutIdle, env.config.timeoutScanner, env.config.timeoutSpam) + 1
        case .relay: seconds = env.config.timeoutIdle
        case .takeover: seconds = env.config.timeoutSession
        case .blind: seconds = env.config.timeoutDirect
        case .closed: seconds = 5
        }
        return .nanoseconds(Int64(seconds * 1e9))
    }

    /// In takeover the bound runs from the takeover; otherwise from the last byte either way.
    private var deadline: NIODeadline {
        (phase == .takeover ? phaseStarted : lastActivity) + currentTimeout
    }

    private func armTimer() {
        timer?.cancel()
        guard !finished else { return }
        timer = client.eventLoop.scheduleTask(deadline: deadline) { [weak self] in self?.timerFired() }
    }

    private func timerFired() {
        guard !finished else { return }
        if phase == .closed {
            client.close(promise: nil)
            server?.close(promise: nil)
            return
        }
        if NIODeadline.now() < deadline {
            armTimer()
            return
        }
        apply(machine.timedOut(), input: nil, fromClient: false)
        armTimer()
    }

    // MARK: - End

    /// Refused at accept, before it started: it ends without a trace of its own (the listener logs the refusal).
    func abandon() {
        finished = true
        env.registry.remove(self)
    }

    private func finish() {
        guard !finished else { return }
        finished = true
        timer?.cancel()
        delayedConnect?.cancel()
        server?.close(promise: nil)
        let totals = SessionLog.Totals(
            helo: machine.helo, transactions: machine.transactions, bytesIn: bytesIn, bytesOut: bytesOut,
            duration: Double((NIODeadline.now() - started).nanoseconds) / 1e9,
            closedBy: machine.closedBy?.rawValue ?? "client", reason: machine.closeReason ?? "client_closed",
            takeover: machine.takeoverReason)
        env.bus.publish(.closed(context, totals))
        spool?.remove()
        spool = nil
        env.registry.remove(self)
    }
}
