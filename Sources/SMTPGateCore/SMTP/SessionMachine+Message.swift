/// A message's end: its size, the size limit, and the held final dot that the policy and the scanners decide on.
extension SessionMachine {
    func messageSize(finished: Bool) -> Int {
        max(0, finished ? dataBytes - 3 - (scanner.dotLines - 1) : dataBytes - scanner.dotLines)
    }

    /// The body outgrew `size_limit`: its end gets 552.
    mutating func exceedSizeLimit(_ limit: Int, _ out: inout MachineOutput) {
        refuseBody(ProxyReplies.sizeExceeded(limit: limit), why: .sizeLimit, takeover: "message size exceeds fixed limit", &out)
    }

    /// The body will be refused at its end: the upstream is closed before it can see a final dot (that
    /// aborts the transaction there) and the rest of the body is swallowed.
    mutating func refuseBody(_ reply: ProxyReply, why: EndReason, takeover reason: String, _ out: inout MachineOutput) {
        dataRejection = (reply, why)
        mode = .data(forward: false)
        serverOpen = false
        out.closeServer = true
        enterTakeover(reason, &out)
    }

    mutating func finishData(forwarded: Bool, _ out: inout MachineOutput) {
        let size = messageSize(finished: true)
        dataBytes = 0
        if forwarded {
            if txn == nil { openTransaction(from: "", mailCode: nil) }
            txn?.size = size
            push(.dataEnd)
            if settings.holdsDot {
                barrier = true
                switch policy?(.endOfData(size: size), policyState) ?? .relay {
                case .relay, .prepend: messageMayGo(size: size, &out)
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
    mutating func messageMayGo(size: Int, _ out: inout MachineOutput) {
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
            case .prepend(let headers):
                addPrepended(headers)
                relay(verb, line, path: path, complete: true, &out)
            case .reply(let reply, let after):
                if verb == .mail { mailRefusedHere = true }
                answerForPolicy(reply, after, &out)
            }
            releaseHeld(&out)
        case .policy(let size)?:
            switch decision {
            case .relay, .ask, .prepend: messageMayGo(size: size, &out)
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
    mutating func refuseHeldMessage(_ reply: ProxyReply, why: EndReason, after: AfterReply, _ out: inout MachineOutput) {
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
}
