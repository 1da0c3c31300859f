/// The server side: replies matched in order to what each command expects.
extension SessionMachine {
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

    mutating func handle(_ reply: Reply, _ out: inout MachineOutput) {
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
            greeted = true
        case .hello(let ehlo, let name):
            if reply.isPositive {
                endTransaction(result: nil, abort: .helo, &out)
                helo = name
                if ehlo {
                    let filtered = EHLOFilter.filter(reply, forbidStartTLS: settings.forbidStartTLS)
                    bytes = filtered.bytes
                    replies.enhanced = filtered.enhancedStatusCodes
                    authOffered = filtered.auth
                    pipeliningOffered = filtered.pipelining
                } else {
                    replies.enhanced = false
                    authOffered = nil
                    pipeliningOffered = false
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
                for h in prepended { out.server(h) }
                prepended = []
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
                if reply.isPositive { authenticated = true }
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
    mutating func unsolicited(_ reply: Reply, _ out: inout MachineOutput) {
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

    mutating func releaseHeld(_ out: inout MachineOutput) {
        guard !held.isEmpty else { return }
        let bytes = held
        held = []
        bytes.withUnsafeBytes { feedClient($0, isHeld: true, &out) }
        resume(&out)
    }

    mutating func resume(_ out: inout MachineOutput) {
        if paused, held.count <= settings.holdLimit {
            paused = false
            out.resumeClient = true
        }
    }
}
