import FuzzSupport
import SMTPGateCore

// The DATA-end scanner and, with a scanner configured, the held final dot and the bare-newline guard, through
// SessionMachine.clientBytes (DataEndScanner and BareNewlineDot are internal). After DATA and 354, a body fed
// in fuzzer-chosen pieces, up to the end `DataReference.end` finds in the whole body:
// - without a scanner the MTA gets exactly those bytes, and the message ends exactly there: the MTA's reply
//   reaches the client, the transaction has the reference's un-stuffed size and the next command is answered
//   at once (nothing else is pending); with no end the machine is still in the body;
// - holding the final dot, the MTA and the spool get the body without its terminator and `messageEnd` comes
//   with the last piece and the un-stuffed size; the dot follows the verdict. Without an end the bytes that could
//   still begin the terminator are held back;
// - a dot next to a bare CR or LF (`DataReference.bareNewlineDot`) stops the body short of it: the MTA is
//   closed having got no such dot itself (some MTAs end the message there: SMTP smuggling), only a prefix of
//   the body ending at most two (held) bytes before that point; the client gets 550 at the end.
fuzzMain { data in
    var input = FuzzInput(data)
    var settings = SessionSettings(proxyName: "gate.fuzz", pipelineSize: 16, onTakeoverCmds: 4, forbidStartTLS: false)
    settings.holdFinalDot = input.byte() & 1 != 0
    let pieces = input.chunkedRest()
    let wire = pieces.flatMap { $0 }
    let end = DataReference.end(wire)
    let fed = Array(wire[..<(end ?? wire.count)])
    let stop = settings.holdFinalDot ? DataReference.bareNewlineDot(fed) : nil
    let message = Array(fed.prefix(end.map { $0 - 3 } ?? fed.count))
    let size = DataReference.unstuff(message).count

    var session = SessionObserver(settings: settings)
    _ = session.server(Array(ascii: "220 mx.fuzz ESMTP\r\n"))
    _ = session.client(Array(ascii: "DATA\r\n"))
    check(session.server(Array(ascii: "354 go ahead\r\n")).messageStart == settings.holdFinalDot, "messageStart")

    var toServer: [UInt8] = [], body: [UInt8] = [], ends: [Int] = []
    var closedServer = false
    var offset = 0
    for piece in pieces where offset < fed.count {
        let part = Array(piece.prefix(fed.count - offset))
        offset += part.count
        let out = session.client(part)
        toServer += session.sent(out, client: part, server: nil).toServer
        body += resolve(out.body, input: part, "body")
        if let e = out.messageEnd {
            check(offset == fed.count, "messageEnd \(offset) bytes into a \(fed.count)-byte body")
            ends.append(e)
        }
        closedServer = closedServer || out.closeServer
    }

    if let stop {
        let k = toServer.count
        check(closedServer && DataReference.bareNewlineDot(toServer) == nil,
              "bare newline dot at \(stop), yet the MTA got one: \(show(toServer))")
        check(toServer == Array(fed.prefix(k)) && k <= stop && k + 2 >= stop,
              "bare newline dot at \(stop): the MTA got \(show(toServer))")
        check(body == Array(toServer.prefix(body.count)) && ends.isEmpty, "spool got \(show(body))")
        if end != nil { check(session.replies.replies.last?.code == 550, "no 550 for the refused body") }
        return
    }
    if settings.holdFinalDot {
        let kept = end == nil ? fed.count - DataReference.terminatorPrefix(fed) : message.count
        check(toServer == Array(fed.prefix(kept)) && body == toServer, "MTA got \(show(toServer)), spool \(show(body))")
        guard end != nil else { return check(ends.isEmpty, "messageEnd without an end") }
        check(ends == [size], "messageEnd \(ends), expected \(size)")
        let dot = session.verdict(.deliver)
        check(session.sent(dot, client: nil, server: nil).toServer == Array(ascii: ".\r\n"), "the held dot")
    } else {
        check(toServer == fed, "MTA got \(show(toServer)), expected \(show(fed))")
    }
    let probe = Array(ascii: "BDAT 0 LAST\r\n")
    guard end != nil else {
        let out = session.client(probe)
        return check(session.sent(out, client: probe, server: nil).toServer == probe, "the body ended early")
    }
    let reply = Array(ascii: "250 2.0.0 queued\r\n")
    let done = session.server(reply)
    check(session.sent(done, client: nil, server: reply).toClient == reply, "the MTA's reply to the message")
    let sizes = done.events.compactMap { if case .transaction(let t) = $0 { t.size } else { nil } }
    check(sizes == [size], "transaction sizes \(sizes), expected \(size)")
    let out = session.client(probe)
    let answer = session.sent(out, client: probe, server: nil)
    check(answer.toServer.isEmpty && answer.toClient.starts(with: Array(ascii: "502")), "the body did not end there")
}
