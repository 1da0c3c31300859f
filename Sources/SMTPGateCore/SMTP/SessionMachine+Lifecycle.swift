/// How a session ends or changes hands: the upstream lost, timeouts, refusals, takeover and close.
extension SessionMachine {
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

    mutating func push(_ e: Expect) {
        pending.append(e)
        if e.isServer { serverPending += 1 }
    }

    mutating func queueLocal(_ reply: ProxyReply, close: (why: EndReason, by: Closer)? = nil, _ out: inout MachineOutput) {
        if pending.isEmpty {
            out.client(replies.render(reply))
            if let close { self.close(close.why, by: close.by, &out) }
        } else {
            pending.append(.local(reply, close: close))
            if close != nil { discardClient = true }
        }
    }

    mutating func drainLocals(_ out: inout MachineOutput) {
        while case .local(let reply, let closing)? = pending.first {
            pending.removeFirst()
            if let reply { out.client(replies.render(reply)) }
            if let closing {
                close(closing.why, by: closing.by, &out)
                return
            }
        }
    }

    mutating func enterTakeover(_ reason: String, _ out: inout MachineOutput) {
        guard takeover == nil else { return }
        takeover = Takeover(reason: reason, limit: settings.onTakeoverCmds)
        out.events.append(.takeover(reason: reason))
        if quitUpstream(&out) { push(.proxyQuit) }
    }

    /// The upstream is inside DATA: anything sent now would be part of the message.
    var isInData: Bool {
        if case .data = mode { return true }
        return awaitingVerdict
    }

    /// Writes a QUIT of the proxy's own when one can be: the upstream is open and speaking SMTP, not inside a
    /// message, and not inside a line relayed in part (it would end that line and make one command of both).
    @discardableResult
    mutating func quitUpstream(_ out: inout MachineOutput) -> Bool {
        guard serverOpen, !quitSent, !isInData, !isBlind else { return false }
        if case .longLine(forward: true, _) = mode { return false }
        quitSent = true
        out.server(Array("QUIT\r\n".utf8))
        return true
    }

    /// After a 334 the MTA waits for the client's SASL line: the pending AUTH owes no reply yet.
    var awaitingSASLLine: Bool {
        if case .sasl = mode, !barrier, case .auth? = pending.first { return true }
        return false
    }

    var isBlind: Bool {
        if case .blind = mode { return true }
        return false
    }

    /// The upstream is gone (closed, timed out or spoke garbage) while the session is not blind.
    mutating func lost(_ text: String, why: EndReason, _ out: inout MachineOutput) {
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
    mutating func hangUpAfterLoss(_ text: String, why: EndReason, _ out: inout MachineOutput) {
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
    mutating func takeOverAfterLoss(_ text: String, why: EndReason, _ out: inout MachineOutput) {
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
    mutating func requeueWaitingCommand() {
        if case .command(_, let line, _)? = waiting { held = line + held }
        waiting = nil
    }

    mutating func finishAfterClientEOF(_ out: inout MachineOutput) {
        if case .closed = mode { return }
        endTransaction(result: nil, abort: .clientClosed, &out)
        quitUpstream(&out)
        close(.clientClosed, by: .client, &out)
    }

    mutating func close(_ why: EndReason, by: Closer, _ out: inout MachineOutput) {
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
    mutating func fixCloseReason(_ why: EndReason, by: Closer) {
        guard !closeReasonFixed else { return }
        endReason = why
        closedBy = by
        closeReasonFixed = true
    }

    mutating func openTransaction(from: String, mailCode: Int?) {
        transactions += 1
        txn = Transaction(number: transactions, helo: helo, mailFrom: from, mailCode: mailCode, recipients: [],
                          size: 0, resultCode: nil, abort: nil)
    }

    mutating func endTransaction(result: Int?, abort: EndReason?, _ out: inout MachineOutput) {
        guard var t = txn else { return }
        txn = nil
        prepended = []
        t.resultCode = result
        t.abort = result == nil ? abort : nil
        out.events.append(.transaction(t))
    }
}
