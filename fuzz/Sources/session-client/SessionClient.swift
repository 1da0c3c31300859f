import FuzzSupport
import SMTPGateCore

// The session machine facing a fuzzed client, with a well-behaved MTA (ScriptedMTA) behind it. The fuzzer
// drives an SMTP client: commands of every kind the proxy treats specially, bodies, SASL lines, BDAT chunks,
// and raw bytes; when the client's bytes are flushed and the MTA's delivered, in what pieces; closes,
// timeouts, shutdown and verdicts. SessionObserver checks every output; ScriptedMTA checks the barriers.
//
// While the client has sent only well-formed lines ("structured"), it numbers each line that is owed a reply
// (the greeting is 0; a message's end is its DATA's number plus one) and can check the order of replies:
// - reply i is the one owed for line i: the MTA's reply tagged i, or one the proxy wrote itself; it comes
//   only once line i has begun to reach the proxy, but for the proxy's last word (a reply in the output that
//   closes the client: timeout, shutdown, lost upstream);
// - no MTA reply to the proxy's own commands (tag=?) reaches the client;
// - each line the MTA gets is one the client sent, unchanged (or the proxy's own QUIT), and each message it
//   gets is the client's body, with the `nat_header` before it;
// - the client never hears of extensions the proxy cannot relay (CHUNKING, BINARYMIME, XEXCH50), nor of
//   STARTTLS when it is forbidden.
// Like a real client it waits for the reply to DATA, AUTH, STARTTLS and SASL lines before it sends more, so it
// knows what its next bytes mean; raw bytes end the checks of order, not the others.

struct Client {
    enum State { case ready, waiting(Int), body, sasl, raw }
    var state = State.ready
    var structured = true
    /// Every line owed a reply, by number; the greeting's and a message end's are empty.
    var lines: [[UInt8]] = [[]]
    /// Where each line begins in the client's byte stream (the greeting before it).
    var starts = [-1]
    /// Bytes of the stream queued, and handed to the proxy.
    var queued = 0, flushed = 0
    /// Messages by their DATA's number: the body as sent (dot-stuffed, without the terminator).
    var bodies: [Int: [UInt8]] = [:]
    var body: [UInt8] = []
    var outbox: [UInt8] = []
    var repliesRead = 0

    mutating func command(_ text: String, barrier: Bool = false, then data: [UInt8] = []) {
        let tag = lines.count
        let line = Array(ascii: "\(text) tag\(tag)\r\n")
        switch state {
        case .ready:
            add(line)
            send(data)
            if barrier { state = .waiting(tag) }
        case .body:
            addBodyLine(Array(ascii: text))
        case .sasl:
            add(line)
            state = .waiting(tag)
        case .raw:
            send(line + data)
        case .waiting:
            break
        }
    }

    /// Queues a line owed a reply (`bytes` as the MTA must get it, or empty for a message's end).
    mutating func add(_ bytes: [UInt8], sending wire: [UInt8]? = nil) {
        lines.append(bytes)
        starts.append(queued)
        send(wire ?? bytes)
    }

    mutating func send(_ bytes: [UInt8]) {
        outbox += bytes
        queued += bytes.count
    }

    mutating func addBodyLine(_ text: [UInt8]) {
        let clean = text.map { $0 == 0x0d || $0 == 0x0a ? 0x20 : $0 }
        let line = (clean.first == 0x2e ? [0x2e] : []) + clean + [0x0d, 0x0a]
        body += line
        send(line)
    }

    mutating func endBody() {
        guard case .body = state else { return }
        bodies[lines.count - 1] = body
        add([], sending: Array(ascii: ".\r\n"))
        body = []
        state = .ready
    }

    mutating func raw(_ bytes: [UInt8]) {
        send(bytes)
        structured = false
        state = .raw
    }

    /// The next `n` queued bytes (all for 0), now handed to the proxy.
    mutating func take(_ n: Int) -> [UInt8] {
        let chunk = Array(outbox.prefix(n == 0 ? outbox.count : n))
        outbox.removeFirst(chunk.count)
        flushed += chunk.count
        return chunk
    }

    /// Reads the replies that arrived since the last call (`closing`: in an output that closes the client).
    mutating func read(_ replies: [ReplyStream.Reply], closing: Bool, forbidStartTLS: Bool) {
        for reply in replies[repliesRead...] {
            let i = repliesRead
            repliesRead += 1
            if structured { checkOrder(reply, i, closing: closing, forbidStartTLS: forbidStartTLS) }
            guard case .waiting(let tag) = state, tag == i else { continue }
            let verb = lines[tag].prefix(4)
            switch (verb, reply.code) {
            case (Array(ascii: "DATA")[...], 354): state = .body
            case (Array(ascii: "STAR")[...], 220): structured = false; state = .raw
            case (_, 334): state = .sasl
            default: state = .ready
            }
        }
    }

    func checkOrder(_ reply: ReplyStream.Reply, _ i: Int, closing: Bool, forbidStartTLS: Bool) {
        check(closing || (i < lines.count && starts[i] < flushed),
              "reply \(i) before its line was sent (\(lines.count) lines, \(flushed) bytes): \(show(reply.bytes))")
        let first = reply.lines[0]
        if let at = first.firstRange(of: Array(ascii: "tag=")) {
            let tag = first[at.upperBound...].prefix { $0 != 0x20 && $0 != 0x0d && $0 != 0x0a }
            check(Array(tag) == Array(ascii: String(i)), "reply \(i) is \(show(first))")
        }
        for line in reply.lines.dropFirst() {
            let word = String(decoding: line.dropFirst(4).prefix { $0 != 0x20 && $0 != 0x0d && $0 != 0x0a }, as: UTF8.self)
            check(!["CHUNKING", "BINARYMIME", "XEXCH50"].contains(word.uppercased())
                  && !(forbidStartTLS && word.uppercased() == "STARTTLS"), "the client was offered \(word)")
        }
    }

    func checkReceived(_ got: [ScriptedMTA.Received], natHeader: [UInt8]?) {
        guard structured else { return }
        for item in got {
            switch item {
            case .line(let tag, let bytes):
                guard let tag else {
                    check(bytes == Array(ascii: "QUIT\r\n"), "the MTA got \(show(bytes))")
                    continue
                }
                check(tag < lines.count && lines[tag] == bytes, "the MTA got \(show(bytes)) for line \(tag)")
            case .message(let tag, let received):
                let sent = tag.flatMap { bodies[$0] }
                check(sent.map { (natHeader ?? []) + $0 } == received, "the MTA got message \(show(received))")
            }
        }
    }
}

let verdicts: [MessageVerdict] = [.deliver, .virus("Eicar-Test-Signature"), .spam(score: 1000, threshold: 5),
                                  .notScanned("timeout", spool: false)]

fuzzMain { data in
    var input = FuzzInput(data)
    var session = SessionObserver.fuzzed(&input)
    let forbid = session.machine.settings.forbidStartTLS
    let nat = session.machine.natHeader
    var mta = ScriptedMTA(personality: input.byte(), forbidStartTLS: forbid)
    var client = Client()
    var clientEOF = false, serverEOF = false

    /// What follows every call: the MTA reads what the proxy sent it, the client the replies.
    func route(_ out: MachineOutput, client bytes: [UInt8]?, server: [UInt8]?) {
        let sent = session.sent(out, client: bytes, server: server)
        client.checkReceived(mta.receive(sent.toServer, closing: out.closeServer), natHeader: nat)
        if out.closeServer || out.closeClient { mta.hangUp() }
        client.read(session.replies.replies, closing: out.closeClient, forbidStartTLS: forbid)
    }
    func flush(_ n: Int) {
        guard !clientEOF, !session.paused, !client.outbox.isEmpty else { return }
        let chunk = client.take(n)
        route(session.client(chunk), client: chunk, server: nil)
    }
    func deliver(_ n: Int) {
        guard !serverEOF, !session.serverClosed, mta.undelivered > 0 else { return }
        let bytes = mta.take(n)
        route(session.server(bytes), client: nil, server: bytes)
        if mta.saidGoodbye, mta.undelivered == 0, !serverEOF {
            serverEOF = true
            route(session.serverEOF(), client: nil, server: nil)
        }
    }

    while !input.isEmpty {
        let op = input.byte()
        switch op % 16 {
        case 0: client.command("HELO h.test")
        case 1: client.command("EHLO h.test")
        case 2: client.command("MAIL FROM:<s@x.test>" + ["", " SIZE=10", " SIZE=100000", " SIZE=99999999999999999999"][Int(op >> 4) % 4])
        case 3: client.command("RCPT TO:<r@x.test>")
        case 4:
            if case .body = client.state { client.endBody() } else { client.command("DATA", barrier: true) }
        case 5: client.command("RSET")
        case 6: client.command("NOOP")
        case 7: client.command("QUIT")
        case 8: client.command("AUTH PLAIN", barrier: true)
        case 9: client.command("STARTTLS", barrier: true)
        case 10:
            let n = Int(op >> 4)
            client.command("BDAT \(n)", then: input.bytes(n))
        case 11: client.command(["XEXCH50 2 2", "VRFY postmaster", "HELP"][Int(op >> 4) % 3])
        case 12:
            let text = input.bytes(Int(input.byte()) % 80)
            if case .body = client.state { client.addBodyLine(text) } else { client.command("X-" + show(text)) }
        case 13: flush(Int(input.byte()))
        case 14: deliver(Int(input.byte()))
        default:
            switch input.byte() % 10 {
            case 0: clientEOF = true; route(session.clientEOF(), client: nil, server: nil)
            case 1: serverEOF = true; mta.hangUp(); route(session.serverEOF(), client: nil, server: nil)
            case 2: route(session.timedOut(), client: nil, server: nil)
            case 3: route(session.shutdown(), client: nil, server: nil)
            case 4, 5, 6, 7: route(session.verdict(verdicts[Int(op >> 4) % 4]), client: nil, server: nil)
            default: client.raw(input.bytes(Int(input.byte())))
            }
        }
    }
    for _ in 0..<4 {
        flush(0)
        deliver(0)
    }
}
