/// The client side: bytes in, split into command lines, message bodies, SASL lines and blind relay.
extension SessionMachine {
    public mutating func clientBytes(_ buf: UnsafeRawBufferPointer) -> MachineOutput {
        var out = MachineOutput()
        feedClient(buf, isHeld: false, &out)
        return out
    }

    public mutating func clientBytes(_ bytes: [UInt8]) -> MachineOutput {
        bytes.withUnsafeBytes { clientBytes($0) }
    }

    mutating func feedClient(_ buf: UnsafeRawBufferPointer, isHeld: Bool, _ out: inout MachineOutput) {
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

    func forward(_ buf: UnsafeRawBufferPointer, _ range: Range<Int>, _ isHeld: Bool, _ out: inout MachineOutput) {
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
    mutating func forwardHoldingDot(_ buf: UnsafeRawBufferPointer, _ range: Range<Int>, finished: Bool,
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

    mutating func takeLine(complete: Bool, _ out: inout MachineOutput) {
        let line = lineBuf
        lineBuf.removeAll(keepingCapacity: lineBuf.count <= 1024)
        if case .sasl = mode {
            out.server(line)
            if complete { barrier = true } else { mode = .longLine(forward: true, barrierAfter: true) }
        } else {
            command(line, complete: complete, &out)
        }
    }
}
