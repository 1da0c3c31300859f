/// One command line: the proxy's own refusals, the policy's decision, then the relay to the MTA.
extension SessionMachine {
    mutating func command(_ line: [UInt8], complete: Bool, _ out: inout MachineOutput) {
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
        // The proxy refused this transaction's MAIL: the MTA has none, so what the client pipelined after it
        // is answered here rather than sent on to be refused there (and counted as the client's rejects).
        if mailRefusedHere, verb == .rcpt || verb == .data {
            queueLocal(ProxyReplies.noMailTransaction, &out)
            return
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
            mailRefusedHere = true
            return
        }
        if let policy, let point = Self.policyPoint(verb, line, path: path) {
            switch policy(point, policyState) {
            case .relay:
                break
            case .prepend(let headers):
                addPrepended(headers)
            case .reply(let reply, let after):
                if verb == .mail { mailRefusedHere = true }
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

    /// Bounded: a header is one line of at most 998 bytes (RFC 5322), and a message gets at most 32 of them.
    mutating func addPrepended(_ headers: [String]) {
        for h in headers where prepended.count < Self.maxPrepended {
            let b = Array(h.utf8)
            guard !b.isEmpty, b.count <= 998, !b.contains(where: { $0 == 0x0d || $0 == 0x0a || $0 == 0 }) else { continue }
            // The client, HELO and sender lists run again at each RCPT: their PREPEND is asked for again.
            let line = b + [0x0d, 0x0a]
            if !prepended.contains(line) { prepended.append(line) }
        }
    }

    /// A policy's refusal of a command: the reply in pipeline order, then what the policy said to do.
    mutating func answerForPolicy(_ reply: PolicyReply, _ after: AfterReply, _ out: inout MachineOutput) {
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
    mutating func relay(_ verb: Verb, _ line: [UInt8], path: ArraySlice<UInt8>, complete: Bool,
                                _ out: inout MachineOutput) {
        out.server(line)
        if verb == .mail || verb == .helo || verb == .ehlo || verb == .rset { mailRefusedHere = false }
        var isBarrier = false
        switch verb {
        case .helo, .ehlo:
            startRecipientCount()
            let name = LogEscape.escape(CommandText.argument(line))
            sent = SentCommands(helo: name, ehlo: verb == .ehlo, mailFrom: nil, mails: sent.mails)
            push(.hello(ehlo: verb == .ehlo, name: name))
        case .mail:
            startRecipientCount()
            sent.mailFrom = LogEscape.escape(path)
            sent.mails += 1
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
            sent.mailFrom = nil
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
    mutating func addressRefusal(_ verb: Verb, pathLength: Int, _ out: inout MachineOutput) -> ProxyReply? {
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

    mutating func startRecipientCount() {
        relayedRecipients = 0
        recipientLimitHit = false
    }

    mutating func answerInTakeover(_ verb: Verb, _ out: inout MachineOutput) {
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
}
