/// The per-session settings the state machine needs, taken from the configuration when the session opens.
public struct SessionSettings: Sendable {
    public var proxyName: String
    public var pipelineSize: Int
    public var onTakeoverCmds: Int
    public var forbidStartTLS: Bool
    /// Largest message accepted (un-stuffed bytes); nil for no limit.
    public var sizeLimit: Int?
    /// A scanner is configured: each message is handed to the shell for its spool and the final dot waits
    /// for a `verdict`.
    public var holdFinalDot = false
    /// Longest command line kept whole for parsing; longer lines are relayed as a stream.
    public var maxCommandLine = 16 * 1024
    /// Most client bytes held while a barrier command (DATA, AUTH, STARTTLS) awaits its reply.
    public var holdLimit = 64 * 1024
    /// Most recipients relayed in one transaction (`max_recipients`); more get 452 from the proxy.
    public var maxRecipients = 1000
    /// A policy decides at the end of each message (locks): the final dot is held until it has.
    public var decideAtEndOfData = false

    /// The final dot waits, for the scanners or for a policy.
    var holdsDot: Bool { holdFinalDot || decideAtEndOfData }

    public init(proxyName: String, pipelineSize: Int, onTakeoverCmds: Int, forbidStartTLS: Bool) {
        self.proxyName = proxyName
        self.pipelineSize = pipelineSize
        self.onTakeoverCmds = onTakeoverCmds
        self.forbidStartTLS = forbidStartTLS
    }

    public init(config: Config, hostName: String) {
        self.init(proxyName: config.resolvedProxyName(hostName: hostName), pipelineSize: config.pipelineSize,
                  onTakeoverCmds: config.onTakeoverCmds, forbidStartTLS: config.forbidStartTLS)
        sizeLimit = config.sizeLimit > 0 ? config.sizeLimit : nil
        holdFinalDot = config.scans
        maxRecipients = config.maxRecipients
    }
}

/// The SMTP-aware relay of one session, without sockets or clocks: the shell feeds it what each side sent
/// and what happened (close, timeout), and does what the returned `MachineOutput` says.
///
/// Every command forwarded upstream is queued with what its reply means; replies are matched in order
/// (PIPELINING), and replies the proxy writes itself wait their turn in the same queue.
public struct SessionMachine {
    public enum Closer: String, Sendable { case client, server, proxy }

    /// Which timeout applies now.
    public enum Phase: Sendable, Equatable { case relay, takeover, blind, closed }

    private enum ClientMode {
        case command
        case data(forward: Bool)
        case sasl
        case longLine(forward: Bool, barrierAfter: Bool)
        case swallow(UInt64)
        case blind
        case closed
    }

    private enum Expect {
        case greeting
        case hello(ehlo: Bool, name: String)
        case mail(String)
        case rcpt(String)
        case data
        case dataEnd
        case auth
        case startTLS
        case quit
        case rset
        case other
        case proxyQuit
        case local(ProxyReply?, close: (why: EndReason, by: Closer)?)

        var isServer: Bool {
            if case .local = self { return false }
            return true
        }
    }

    public let settings: SessionSettings
    public private(set) var replies: ProxyReplies
    /// Sent to the MTA right after its 354, ahead of the client's message (`nat_header`).
    public var natHeader: [UInt8]?
    private var mode = ClientMode.command
    private var pending: [Expect] = [.greeting]
    private var serverPending = 1
    private var lineBuf: [UInt8] = []
    private var held: [UInt8] = []
    private var barrier = false
    private var paused = false
    private var reader = ReplyReader()
    private var scanner = DataEndScanner()
    private var bareDot = BareNewlineDot()
    private var takeover: Takeover?
    private var serverOpen = true
    private var quitSent = false
    private var clientEOF = false
    private var quitAnswered = false
    /// A closing reply is queued: nothing the client sends after it is read.
    private var discardClient = false
    private var txn: Transaction?
    /// RCPTs relayed since the last MAIL (HELO, RSET) and not refused: what `max_recipients` counts.
    private var relayedRecipients = 0
    /// `max_recipients` was hit in this transaction (logged once per transaction).
    private var recipientLimitHit = false
    private var dataBytes = 0
    /// Why the body being swallowed will be refused at its end (nil: the upstream was lost).
    private var dataRejection: (reply: ProxyReply, why: EndReason)?
    /// Bytes that may begin the final dot line, not yet sent on (only while holding the final dot).
    private var maybeDot: [UInt8] = []
    /// The message is complete and its dot held; the reply owed for it is the front `.dataEnd`.
    private var waiting: Waiting?
    /// The message is complete and its final dot held: nothing may go upstream before that dot.
    private var awaitingVerdict: Bool { waiting?.holdsDot ?? false }

    /// What the machine holds the client's input for, besides a barrier command's reply.
    private enum Waiting {
        /// A command the policy asked to think about; it goes back to the head of the input if the session
        /// changes under it (the upstream is lost), so whatever answers next answers it in order.
        case command(Verb, line: [UInt8], path: ArraySlice<UInt8>)
        /// The policy's answer on a finished message.
        case policy(size: Int)
        /// The scanners' verdict on a finished message.
        case scan

        var holdsDot: Bool {
            if case .command = self { return false }
            return true
        }
    }

    /// Asked at HELO/EHLO, MAIL, RCPT, DATA and the end of each message; nil relays everything.
    public var policy: ((PolicyPoint) -> PolicyDecision)?
    public private(set) var helo: String?
    public private(set) var transactions = 0
    public private(set) var endReason: EndReason?
    public var closeReason: String? { endReason?.rawValue }
    private var closeReasonFixed = false
    /// Why the session was taken over, if it was.
    public var takeoverReason: String? { takeover?.reason }
    public private(set) var closedBy: Closer?
    /// The number of the transaction in progress, if one is.
    public var currentTransaction: Int? { txn?.number }
    public var currentMailFrom: String? { txn?.mailFrom }
    public var currentRecipients: Int { txn?.recipientCount ?? 0 }

    public init(settings: SessionSettings) {
        self.settings = settings
        self.replies = ProxyReplies(proxyName: settings.proxyName)
    }

    public var phase: Phase {
        switch mode {
        case .blind: return .blind
        case .closed: return .closed
        default: return takeover == nil ? .relay : .takeover
        }
    }

    // MARK: - Client side

    public mutating func clientBytes(_ buf: UnsafeRawBufferPointer) -> MachineOutput {
        var out = MachineOutput()
        feedClient(buf, isHeld: false, &out)
        return out
    }

    public mutating func clientBytes(_ bytes: [UInt8]) -> MachineOutput {
        bytes.withUnsafeBytes { clientBytes($0) }
    }

    private mutating func feedClient(_ buf: UnsafeRawBufferPointer, isHeld: Bool, _ out: inout MachineOutput) {
        var i = 0
        let n = buf.count
        while i < n {
            if barrier {
                held.append(contentsOf: buf[i..<n])
                if held.count > settings.holdLimit, !paused {
                    paused = true
                    out.pauseClient = true
                }
                return
            }
            switch mode {
            case .closed:
                return
            case _ where discardClient:
                return
            case .blind:
                forward(buf, i..<n, isHeld, &out)
                return
            case .swallow(let left):
                let take = min(UInt64(n - i), left)
                i += Int(take)
                mode = left == take ? .command : .swallow(left - take)
            case .data(var fwd):
                let found = scanner.scan(buf, from: i)
                let end = found ?? n
                dataBytes += end - i
                if fwd, let limit = settings.sizeLimit, messageSize(finished: found != nil) > limit {
                    exceedSizeLimit(limit, &out)
                    fwd = false
                }
                if fwd, settings.holdsDot, let dot = bareDot.find(buf, i..<end) {
                    // Short of the suspect bytes, a held line-start dot included: the MTA must not see what it
                    // might take for the end of the message. The body is refused, so the spool needs no copy.
                    // Held bytes before the piece are body once any of the piece goes on.
                    if dot > i, !maybeDot.isEmpty { out.server(maybeDot) }
                    maybeDot = []
                    forward(buf, i..<dot, isHeld, &out)
                    refuseBody(ProxyReplies.bareNewlineDot, why: .bareNewline, takeover: "bare line ending before a dot", &out)
                    fwd = false
                }
                if !fwd {
                    maybeDot = []
                } else if settings.holdsDot {
                    forwardHoldingDot(buf, i..<end, finished: found != nil, isHeld, &out)
                } else {
                    forward(buf, i..<end, isHeld, &out)
                }
                i = end
                if found != nil {
                    mode = .command
                    finishData(forwarded: fwd, &out)
                }
            case .longLine(let fwd, let barrierAfter):
                let lf = Scan.index(of: 0x0a, in: buf, from: i)
                let end = lf.map { $0 + 1 } ?? n
                if fwd { forward(buf, i..<end, isHeld, &out) }
                i = end
                if lf != nil {
                    mode = .command
                    barrier = barrierAfter
                }
            case .command, .sasl:
                guard let lf = Scan.index(of: 0x0a, in: buf, from: i) else {
                    lineBuf.append(contentsOf: buf[i..<n])
                    i = n
                    if lineBuf.count > settings.maxCommandLine { takeLine(complete: false, &out) }
                    continue
                }
                lineBuf.append(contentsOf: buf[i...lf])
                i = lf + 1
                takeLine(complete: true, &out)
            }
        }
    }

    private func forward(_ buf: UnsafeRawBufferPointer, _ range: Range<Int>, _ isHeld: Bool, _ out: inout MachineOutput) {
        guard !range.isEmpty else { return }
        if isHeld {
            out.server(Array(buf[range]))
        } else {
            out.toServer.append(.input(range))
        }
    }

    /// Forwards body bytes (and copies them to `body`) except those that may be, or are, the final ".\r\n".
    /// Held bytes either turn out to be the terminator (dropped: the dot waits for the verdict) or ordinary
    /// body, sent on ahead of the next bytes.
    private mutating func forwardHoldingDot(_ buf: UnsafeRawBufferPointer, _ range: Range<Int>, finished: Bool,
                                            _ isHeld: Bool, _ out: inout MachineOutput) {
        let len = range.count
        let keep: Int
        if finished {
            // The terminator's last bytes are here; the first ones were held unless all three are here.
            if !maybeDot.isEmpty, len == 3 - maybeDot.count {
                maybeDot = []
                return
            }
            keep = 3
        } else {
            let prefix = scanner.terminatorPrefix
            if len < prefix {
                maybeDot.append(contentsOf: buf[range])
                return
            }
            keep = prefix
        }
        if !maybeDot.isEmpty {
            out.server(maybeDot)
            out.toBody(maybeDot)
            maybeDot = []
        }
        let body = range.lowerBound..<(range.upperBound - keep)
        forward(buf, body, isHeld, &out)
        if !body.isEmpty {
            if isHeld { out.toBody(Array(buf[body])) } else { out.body.append(.input(body)) }
        }
        if !finished { maybeDot = Array(buf[body.upperBound..<range.upperBound]) }
    }

    private mutating func takeLine(complete: Bool, _ out: inout MachineOutput) {
        let line = lineBuf
        lineBuf.removeAll(keepingCapacity: lineBuf.count <= 1024)
        if case .sasl = mode {
            out.server(line)
            if complete { barrier = true } else { mode = .longLine(forward: true, barrierAfter: true) }
        } else {
            command(line, complete: complete, &out)
        }
    }

    private mutating func command(_ line: [UInt8], complete: Bool, _ out: inout MachineOutput) {
        let verb = Verb.parse(line)
        if !complete { mode = .longLine(forward: false, barrierAfter: false) }
        // A BDAT chunk follows its command line whatever the answer: never read it as commands.
        if verb == .bdat, complete, let size = CommandText.bdatSize(line), size > 0 { mode = .swallow(size) }
        if takeover != nil {
            answerInTakeover(verb, &out)
            return
        }
        // Every reply still owed counts, the proxy's own included, so the queue stays bounded.
        if pending.count >= settings.pipelineSize {
            enterTakeover("pipeline overflow", &out)
            queueLocal(ProxyReplies.pipelineOverflow, &out)
            return
        }
        switch verb {
        case .bdat:
            queueLocal(ProxyReplies.bdatUnsupported, &out)
            return
        case .xexch50:
            queueLocal(ProxyReplies.xexch50Unsupported, &out)
            return
        case .starttls where settings.forbidStartTLS:
            queueLocal(ProxyReplies.startTLSForbidden, &out)
            return
        default:
            break
        }
        let path = Self.path(verb, line)
        if let refusal = addressRefusal(verb, pathLength: path.count, &out) {
            queueLocal(refusal, &out)
            return
        }
        if verb == .mail, let limit = settings.sizeLimit, let declared = CommandText.mailSize(line), declared > limit {
            let reply = ProxyReplies.sizeExceeded(limit: limit)
            queueLocal(reply, &out)
            out.events.append(.transaction(Transaction(
                number: nil, helo: helo, mailFrom: LogEscape.escape(path),
                mailCode: reply.code, recipients: [], size: declared, resultCode: nil, abort: .sizeLimit)))
            return
        }
        if let policy, let point = Self.policyPoint(verb, line, path: path) {
            switch policy(point) {
            case .relay:
                break
            case .reply(let reply, let after):
                answerForPolicy(reply, after, &out)
                return
            case .ask:
                // A line too long to hold is relayed as a stream: only whole lines can wait.
                if complete {
                    waiting = .command(verb, line: line, path: path)
                    barrier = true
                    out.questions.append(point)
                    return
                }
            }
        }
        relay(verb, line, path: path, complete: complete, &out)
    }

    /// Where a command meets the policy, if it does.
    static func policyPoint(_ verb: Verb, _ line: [UInt8], path: ArraySlice<UInt8>) -> PolicyPoint? {
        switch verb {
        case .helo, .ehlo: return .hello(name: LogEscape.escape(CommandText.argument(line)))
        case .mail: return .mail(from: LogEscape.escape(path))
        case .rcpt: return .rcpt(to: LogEscape.escape(path))
        case .data: return .data
        default: return nil
        }
    }

    /// A policy's refusal of a command: the reply in pipeline order, then what the policy said to do.
    private mutating func answerForPolicy(_ reply: PolicyReply, _ after: AfterReply, _ out: inout MachineOutput) {
        switch after {
        case .carryOn:
            queueLocal(reply.proxyReply, &out)
        case .takeover(let reason):
            // The reply first: the takeover's QUIT to the MTA must not make the client wait for its answer.
            queueLocal(reply.proxyReply, &out)
            enterTakeover(reason, &out)
        case .close:
            queueLocal(reply.proxyReply, close: (reply.why, .proxy), &out)
        }
    }

    /// The command goes to the MTA, its reply expected in order.
    private mutating func relay(_ verb: Verb, _ line: [UInt8], path: ArraySlice<UInt8>, complete: Bool,
                                _ out: inout MachineOutput) {
        out.server(line)
        var isBarrier = false
        switch verb {
        case .helo, .ehlo:
            startRecipientCount()
            push(.hello(ehlo: verb == .ehlo, name: LogEscape.escape(CommandText.argument(line))))
        case .mail:
            startRecipientCount()
            push(.mail(LogEscape.escape(path)))
        case .rcpt:
            relayedRecipients += 1
            push(.rcpt(LogEscape.escape(path)))
        case .data:
            push(.data)
            isBarrier = true
        case .auth:
            push(.auth)
            isBarrier = true
        case .starttls:
            push(.startTLS)
            isBarrier = true
        case .quit:
            push(.quit)
            quitSent = true
        case .rset:
            startRecipientCount()
            push(.rset)
        default:
            push(.other)
        }
        if complete {
            barrier = isBarrier
        } else {
            mode = .longLine(forward: true, barrierAfter: isBarrier)
        }
    }

    /// RFC 5321 4.5.3.1.3 bounds a path at 256 octets, and `max_recipients` bounds a transaction: both
    /// keep what one client can make the proxy hold (and log) small, whatever the MTA would accept.
    private mutating func addressRefusal(_ verb: Verb, pathLength: Int, _ out: inout MachineOutput) -> ProxyReply? {
        switch verb {
        case .mail:
            return pathLength > Self.maxPath ? ProxyReplies.senderTooLong : nil
        case .rcpt:
            if pathLength > Self.maxPath { return ProxyReplies.recipientTooLong }
            guard relayedRecipients >= settings.maxRecipients else { return nil }
            if !recipientLimitHit {
                recipientLimitHit = true
                out.events.append(.limitReached(limit: "max_recipients", value: settings.maxRecipients))
            }
            return ProxyReplies.tooManyRecipients
        default:
            return nil
        }
    }

    /// Longest MAIL FROM / RCPT TO path, brackets included (RFC 5321 4.5.3.1.3).
    static let maxPath = 256

    /// The path of a MAIL FROM or RCPT TO as given (empty for other verbs): bounded, then logged.
    static func path(_ verb: Verb, _ line: [UInt8]) -> ArraySlice<UInt8> {
        switch verb {
        case .mail: return CommandText.path(line, prefix: "FROM:")
        case .rcpt: return CommandText.path(line, prefix: "TO:")
        default: return []
        }
    }

    private mutating func startRecipientCount() {
        relayedRecipients = 0
        recipientLimitHit = false
    }

    private mutating func answerInTakeover(_ verb: Verb, _ out: inout MachineOutput) {
        guard var t = takeover else { return }
        let answer = t.answer(verb, proxyName: replies.proxyName)
        takeover = t
        switch answer {
        case .reply(let reply):
            queueLocal(reply, &out)
        case .replyAndClose(let reply, let why):
            queueLocal(reply, close: (why, why == .quit ? .client : .proxy), &out)
        }
    }

    /// The message's size as stored: without the stuffing dots and, once finished, without the terminator.
    private func messageSize(finished: Bool) -> Int {
        max(0, finished ? dataBytes - 3 - (scanner.dotLines - 1) : dataBytes - scanner.dotLines)
    }

    /// The body outgrew `size_limit`: its end gets 552.
    private mutating func exceedSizeLimit(_ limit: Int, _ out: inout MachineOutput) {
        refuseBody(ProxyReplies.sizeExceeded(limit: limit), why: .sizeLimit, takeover: "message size exceeds fixed limit", &out)
    }

    /// The body will be refused at its end: the upstream is closed before it can see a final dot (that
    /// aborts the transaction there) and the rest of the body is swallowed.
    private mutating func refuseBody(_ reply: ProxyReply, why: EndReason, takeover reason: String, _ out: inout MachineOutput) {
        dataRejection = (reply, why)
        mode = .data(forward: false)
        serverOpen = false
        out.closeServer = true
        enterTakeover(reason, &out)
    }

    private mutating func finishData(forwarded: Bool, _ out: inout MachineOutput) {
        let size = messageSize(finished: true)
        dataBytes = 0
        if forwarded {
            if txn == nil { openTransaction(from: "", mailCode: nil) }
            txn?.size = size
            push(.dataEnd)
            if settings.holdsDot {
                barrier = true
                switch policy?(.endOfData(size: size)) ?? .relay {
                case .relay: messageMayGo(size: size, &out)
                case .ask:
                    waiting = .policy(size: size)
                    out.questions.append(.endOfData(size: size))
                case .reply(let reply, let after): refuseHeldMessage(reply.proxyReply, why: reply.why, after: after, &out)
                }
            }
        } else {
            txn?.size = size
            let (reply, why) = dataRejection
                ?? (ProxyReplies.destinationLost(takeover?.reason ?? "connection to destination lost", transactionOpen: true), .destinationLost)
            dataRejection = nil
            queueLocal(reply, &out)
            endTransaction(result: nil, abort: why, &out)
        }
    }

    /// The policy let a finished message go: to the scanners, or (without them) its dot goes on now.
    private mutating func messageMayGo(size: Int, _ out: inout MachineOutput) {
        if settings.holdFinalDot {
            waiting = .scan
            out.messageEnd = size
        } else {
            waiting = nil
            out.server(Array(".\r\n".utf8))
            barrier = false
            releaseHeld(&out)
        }
    }

    /// The policy's answer to the question in `MachineOutput.questions`. An answer nothing waits for (the
    /// session moved on: the upstream was lost, the client left) is ignored.
    public mutating func answer(_ decision: PolicyDecision) -> MachineOutput {
        var out = MachineOutput()
        switch waiting {
        case .command(let verb, let line, let path)?:
            waiting = nil
            barrier = false
            switch decision {
            case .relay, .ask: relay(verb, line, path: path, complete: true, &out)
            case .reply(let reply, let after): answerForPolicy(reply, after, &out)
            }
            releaseHeld(&out)
        case .policy(let size)?:
            switch decision {
            case .relay, .ask: messageMayGo(size: size, &out)
            case .reply(let reply, let after): refuseHeldMessage(reply.proxyReply, why: reply.why, after: after, &out)
            }
        case .scan?, nil:
            break
        }
        return out
    }

    /// The scanners' decision on the message whose dot is held. Delivered: the dot goes on and the MTA's
    /// reply will answer the client. Otherwise the upstream is closed before it ever sees the dot (that
    /// aborts the transaction there), the client gets the reason and the session is taken over.
    public mutating func verdict(_ verdict: MessageVerdict, scan: ScanSummary?) -> MachineOutput {
        var out = MachineOutput()
        guard case .scan? = waiting else { return out }
        waiting = nil
        txn?.scan = scan
        switch verdict {
        case .deliver:
            out.server(Array(".\r\n".utf8))
            barrier = false
            releaseHeld(&out)
        case .virus(let name):
            refuseHeldMessage(ProxyReplies.virusFound(name), why: .virus, after: .takeover("virus found"), &out)
        case .spam(let score, let threshold):
            refuseHeldMessage(ProxyReplies.spamFound(score: score, threshold: threshold), why: .spam,
                              after: .takeover("spam found"), &out)
        case .notScanned(let why, let spool):
            refuseHeldMessage(ProxyReplies.notScanned(why), why: spool ? .spoolError : .scanError,
                              after: .takeover("message not scanned"), &out)
        }
        return out
    }

    /// A finished message is refused before the MTA sees its dot: the upstream is closed (that aborts the
    /// transaction there), the client gets `reply` for it, and the session is taken over or closed.
    private mutating func refuseHeldMessage(_ reply: ProxyReply, why: EndReason, after: AfterReply, _ out: inout MachineOutput) {
        waiting = nil
        serverOpen = false
        out.closeServer = true
        let closing: (why: EndReason, by: Closer)? = after == .close ? (why, .proxy) : nil
        pending = pending.map { e in
            if case .dataEnd = e { return .local(reply, close: closing) }
            return e
        }
        serverPending = 0
        endTransaction(result: nil, abort: why, &out)
        enterTakeover(Self.takeoverReason(after, why), &out)
        barrier = false
        drainLocals(&out)
        releaseHeld(&out)
        if clientEOF { finishAfterClientEOF(&out) }
    }

    static func takeoverReason(_ after: AfterReply, _ why: EndReason) -> String {
        if case .takeover(let reason) = after { return reason }
        return why.rawValue
    }

    // MARK: - Server side

    public mutating func serverBytes(_ buf: UnsafeRawBufferPointer) -> MachineOutput {
        var out = MachineOutput()
        if case .blind = mode {
            if !buf.isEmpty { out.toClient.append(.input(0..<buf.count)) }
            return out
        }
        var i = 0
        while i < buf.count, serverOpen {
            let next: (Reply, Int)?
            do {
                next = try reader.next(buf, from: i)
            } catch {
                out.closeServer = true
                lost("bad reply from destination", why: .serverProtocolError, &out)
                break
            }
            guard let (reply, after) = next else { break }
            i = after
            handle(reply, &out)
            if case .blind = mode {
                if i < buf.count { out.toClient.append(.input(i..<buf.count)) }
                break
            }
        }
        return out
    }

    public mutating func serverBytes(_ bytes: [UInt8]) -> MachineOutput {
        bytes.withUnsafeBytes { serverBytes($0) }
    }

    private mutating func handle(_ reply: Reply, _ out: inout MachineOutput) {
        if awaitingVerdict {
            // Nothing is owed before the held dot is sent: a reply now would be taken for the message's.
            out.closeServer = true
            lost("bad reply from destination", why: .serverProtocolError, &out)
            return
        }
        guard let front = pending.first, front.isServer else {
            unsolicited(reply, &out)
            return
        }
        var pop = true
        var bytes = reply.bytes
        var release = false
        switch front {
        case .greeting:
            break
        case .hello(let ehlo, let name):
            if reply.isPositive {
                endTransaction(result: nil, abort: .helo, &out)
                helo = name
                if ehlo {
                    let filtered = EHLOFilter.filter(reply, forbidStartTLS: settings.forbidStartTLS)
                    bytes = filtered.bytes
                    replies.enhanced = filtered.enhancedStatusCodes
                } else {
                    replies.enhanced = false
                }
            }
        case .mail(let from):
            out.events.append(.replied(.mail, code: reply.code))
            if reply.isPositive {
                endTransaction(result: nil, abort: .newMail, &out)
                openTransaction(from: from, mailCode: reply.code)
            } else {
                out.events.append(.transaction(Transaction(
                    number: nil, helo: helo, mailFrom: from, mailCode: reply.code, recipients: [],
                    size: 0, resultCode: nil, abort: .mailRejected)))
            }
        case .rcpt(let to):
            out.events.append(.replied(.rcpt, code: reply.code))
            if !reply.isPositive { relayedRecipients = max(0, relayedRecipients - 1) }
            txn?.record(LogRecord.Recipient(address: to, code: reply.code))
        case .data:
            barrier = false
            release = true
            if reply.code == 354 {
                mode = .data(forward: true)
                scanner = DataEndScanner()
                dataBytes = 0
                maybeDot = []
                bareDot = BareNewlineDot()
                out.messageStart = settings.holdFinalDot
                if let natHeader { out.server(natHeader) }
            }
        case .dataEnd:
            out.events.append(.replied(.dataEnd, code: reply.code))
            endTransaction(result: reply.code, abort: nil, &out)
        case .auth:
            barrier = false
            release = true
            if reply.code == 334 {
                mode = .sasl
                pop = false
            } else {
                mode = .command
                out.events.append(.replied(.auth, code: reply.code))
            }
        case .startTLS:
            if reply.code == 220 {
                mode = .blind
                barrier = false
                out.goBlind = true
                out.events.append(.startTLS)
            } else {
                barrier = false
                release = true
            }
        case .quit:
            endTransaction(result: nil, abort: .quit, &out)
            fixCloseReason(.quit, by: .client)
            quitAnswered = true
        case .rset:
            if reply.isPositive { endTransaction(result: nil, abort: .rset, &out) }
        case .other:
            break
        case .proxyQuit:
            bytes = []
            out.closeServer = true
            serverOpen = false
        case .local:
            break
        }
        if pop {
            pending.removeFirst()
            serverPending -= 1
        }
        if !bytes.isEmpty { out.client(bytes) }
        drainLocals(&out)
        if case .blind = mode {
            let early = held
            held = []
            if !early.isEmpty { out.server(early) }
            resume(&out)
        } else if release {
            releaseHeld(&out)
        }
        if clientEOF, serverPending == 0 { finishAfterClientEOF(&out) }
    }

    /// A reply no command of the client's is waiting for. Passed on, a lock-step client would take it for the
    /// answer to its next command (a `250` inside DATA for its dot, say), so it is only logged; a message's
    /// outcome stays the MTA's reply to its dot. A 421 says the MTA is hanging up: the session ends as if it
    /// had (a message in progress gets 451).
    private mutating func unsolicited(_ reply: Reply, _ out: inout MachineOutput) {
        out.events.append(.unsolicitedReply(code: reply.code, text: Self.replyExcerpt(reply)))
        if reply.code == 421 {
            out.closeServer = true
            lost("destination closed the connection", why: .serverClosed, &out)
        }
    }

    /// The first line of a reply, printable and short, for the log.
    static func replyExcerpt(_ reply: Reply) -> String {
        var line = reply.lines.first ?? []
        while let last = line.last, last == 0x0a || last == 0x0d { line.removeLast() }
        return LogEscape.escape(line.prefix(Self.excerptBytes))
    }

    static let excerptBytes = 200

    private mutating func releaseHeld(_ out: inout MachineOutput) {
        guard !held.isEmpty else { return }
        let bytes = held
        held = []
        bytes.withUnsafeBytes { feedClient($0, isHeld: true, &out) }
        resume(&out)
    }

    private mutating func resume(_ out: inout MachineOutput) {
        if paused, held.count <= settings.holdLimit {
            paused = false
            out.resumeClient = true
        }
    }

    // MARK: - Connection events

    /// The upstream closed its side or failed.
    public mutating func serverClosed() -> MachineOutput {
        var out = MachineOutput()
        guard serverOpen else {
            if case .blind = mode { close(.serverClosed, by: .server, &out) }
            return out
        }
        serverOpen = false
        if case .blind = mode {
            close(.serverClosed, by: .server, &out)
            return out
        }
        if quitAnswered, serverPending == 0 {
            close(.quit, by: .client, &out)
            return out
        }
        lost("connection to destination lost", why: .serverClosed, &out)
        return out
    }

    /// The session cannot start: the client gets one reply and the connection ends.
    public mutating func refuse(_ refusal: Refusal) -> MachineOutput {
        var out = MachineOutput()
        serverOpen = false
        out.client(replies.render(refusal.reply))
        close(refusal.why, by: .proxy, &out)
        return out
    }

    /// The client closed its sending side.
    public mutating func clientClosed() -> MachineOutput {
        var out = MachineOutput()
        switch mode {
        case .closed:
            return out
        case .blind:
            fixCloseReason(.clientClosed, by: .client)
            out.halfCloseServer = true
            return out
        default:
            break
        }
        clientEOF = true
        if serverOpen, serverPending > 0, takeover == nil { return out }
        finishAfterClientEOF(&out)
        return out
    }

    /// The timer for the current phase fired (idle, session or direct: the shell picks by `phase`).
    public mutating func timedOut() -> MachineOutput {
        var out = MachineOutput()
        switch mode {
        case .closed:
            break
        case .blind:
            close(.directTimeout, by: .proxy, &out)
        default:
            if takeover != nil {
                out.client(replies.render(ProxyReplies.sessionTimeout))
                close(.sessionTimeout, by: .proxy, &out)
            } else if serverPending > 0, serverOpen, !awaitingSASLLine {
                serverOpen = false
                out.closeServer = true
                lost("destination timed out", why: .serverTimeout, &out)
            } else {
                out.client(replies.render(ProxyReplies.idleTimeout))
                close(.idleTimeout, by: .proxy, &out)
            }
        }
        return out
    }

    /// The daemon is stopping and the drain bound has passed.
    public mutating func shutdown() -> MachineOutput {
        var out = MachineOutput()
        switch mode {
        case .closed: break
        case .blind: close(.shutdown, by: .proxy, &out)
        default:
            out.client(replies.render(ProxyReplies.shuttingDown))
            close(.shutdown, by: .proxy, &out)
        }
        return out
    }

    // MARK: - Internals

    private mutating func push(_ e: Expect) {
        pending.append(e)
        if e.isServer { serverPending += 1 }
    }

    private mutating func queueLocal(_ reply: ProxyReply, close: (why: EndReason, by: Closer)? = nil, _ out: inout MachineOutput) {
        if pending.isEmpty {
            out.client(replies.render(reply))
            if let close { self.close(close.why, by: close.by, &out) }
        } else {
            pending.append(.local(reply, close: close))
            if close != nil { discardClient = true }
        }
    }

    private mutating func drainLocals(_ out: inout MachineOutput) {
        while case .local(let reply, let closing)? = pending.first {
            pending.removeFirst()
            if let reply { out.client(replies.render(reply)) }
            if let closing {
                close(closing.why, by: closing.by, &out)
                return
            }
        }
    }

    private mutating func enterTakeover(_ reason: String, _ out: inout MachineOutput) {
        guard takeover == nil else { return }
        takeover = Takeover(reason: reason, limit: settings.onTakeoverCmds)
        out.events.append(.takeover(reason: reason))
        if quitUpstream(&out) { push(.proxyQuit) }
    }

    /// The upstream is inside DATA: anything sent now would be part of the message.
    private var isInData: Bool {
        if case .data = mode { return true }
        return awaitingVerdict
    }

    /// Writes a QUIT of the proxy's own when one can be: the upstream is open and speaking SMTP, not inside a
    /// message, and not inside a line relayed in part (it would end that line and make one command of both).
    @discardableResult
    private mutating func quitUpstream(_ out: inout MachineOutput) -> Bool {
        guard serverOpen, !quitSent, !isInData, !isBlind else { return false }
        if case .longLine(forward: true, _) = mode { return false }
        quitSent = true
        out.server(Array("QUIT\r\n".utf8))
        return true
    }

    /// After a 334 the MTA waits for the client's SASL line: the pending AUTH owes no reply yet.
    private var awaitingSASLLine: Bool {
        if case .sasl = mode, !barrier, case .auth? = pending.first { return true }
        return false
    }

    private var isBlind: Bool {
        if case .blind = mode { return true }
        return false
    }

    /// The upstream is gone (closed, timed out or spoke garbage) while the session is not blind.
    private mutating func lost(_ text: String, why: EndReason, _ out: inout MachineOutput) {
        serverOpen = false
        requeueWaitingCommand()
        if case .closed = mode { return }
        if takeover == nil, txn == nil, !isInData {
            hangUpAfterLoss(text, why: why, &out)
        } else {
            takeOverAfterLoss(text, why: why, &out)
        }
    }

    /// No transaction at stake: the first reply still owed (or an unsolicited one) is a 421, then the end.
    private mutating func hangUpAfterLoss(_ text: String, why: EndReason, _ out: inout MachineOutput) {
        let reply = ProxyReplies.destinationLost(text, transactionOpen: false)
        var rebuilt: [Expect] = []
        var answered = false
        for e in pending {
            switch e {
            case .local: rebuilt.append(e)
            case .proxyQuit: continue
            default:
                if !answered { rebuilt.append(.local(reply, close: (why, .server))) }
                answered = true
            }
        }
        if !answered { rebuilt.append(.local(reply, close: (why, .server))) }
        pending = rebuilt
        serverPending = 0
        drainLocals(&out)
    }

    /// A transaction is open: every reply still owed becomes a 451 (QUIT a 221) and the proxy answers alone.
    private mutating func takeOverAfterLoss(_ text: String, why: EndReason, _ out: inout MachineOutput) {
        // The client's SASL line is not sent yet: the takeover answers it when it comes, once.
        if awaitingSASLLine { pending.removeFirst() }
        enterTakeover(text, &out)
        pending = pending.compactMap { e -> Expect? in
            switch e {
            case .local: return e
            case .proxyQuit: return nil
            case .quit: return .local(ProxyReplies.closing, close: (.quit, .client))
            default: return .local(ProxyReplies.destinationLost(text, transactionOpen: true), close: nil)
            }
        }
        serverPending = 0
        switch mode {
        case .data: mode = .data(forward: false)
        case .sasl: mode = .command
        case .longLine: mode = .longLine(forward: false, barrierAfter: false)
        default: break
        }
        if !isInData { endTransaction(result: nil, abort: why, &out) }
        barrier = false
        drainLocals(&out)
        releaseHeld(&out)
    }

    /// A command still waiting for the policy is read again by whoever answers next (the takeover);
    /// a held message is settled by the loss itself.
    private mutating func requeueWaitingCommand() {
        if case .command(_, let line, _)? = waiting { held = line + held }
        waiting = nil
    }

    private mutating func finishAfterClientEOF(_ out: inout MachineOutput) {
        if case .closed = mode { return }
        endTransaction(result: nil, abort: .clientClosed, &out)
        quitUpstream(&out)
        close(.clientClosed, by: .client, &out)
    }

    private mutating func close(_ why: EndReason, by: Closer, _ out: inout MachineOutput) {
        if !closeReasonFixed {
            endReason = why
            closedBy = by
        }
        endTransaction(result: nil, abort: why, &out)
        quitUpstream(&out)
        serverOpen = false
        waiting = nil
        barrier = false
        mode = .closed
        pending.removeAll()
        held.removeAll()
        out.closeClient = true
        out.closeServer = true
    }

    /// A decisive end (QUIT answered, the client ending a blind relay) names the close whatever follows.
    private mutating func fixCloseReason(_ why: EndReason, by: Closer) {
        guard !closeReasonFixed else { return }
        endReason = why
        closedBy = by
        closeReasonFixed = true
    }

    private mutating func openTransaction(from: String, mailCode: Int?) {
        transactions += 1
        txn = Transaction(number: transactions, helo: helo, mailFrom: from, mailCode: mailCode, recipients: [],
                          size: 0, resultCode: nil, abort: nil)
    }

    private mutating func endTransaction(result: Int?, abort: EndReason?, _ out: inout MachineOutput) {
        guard var t = txn else { return }
        txn = nil
        t.resultCode = result
        t.abort = result == nil ? abort : nil
        out.events.append(.transaction(t))
    }
}
