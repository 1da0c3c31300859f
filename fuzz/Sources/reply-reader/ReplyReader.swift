import FuzzSupport
import SMTPGateCore

// The proxy's reader of upstream replies, through SessionMachine.serverBytes (ReplyReader is internal): with a
// greeting and `noops` NOOPs awaiting replies, the server's bytes in fuzzer-chosen pieces reach the client as
// exactly the replies `referenceReplies` finds in the whole stream, byte for byte and in order; a stream that
// breaks the grammar or the size bounds is cut there and the client gets one 421 and is closed. Only as many
// replies as are awaited are fed, so what the machine does with unsolicited ones does not enter into it.
let noops = 200
let maxLine = 16 * 1024, maxReply = 256 * 1024

/// Complete replies in `w`, up to `limit` of them; whether the stream broke the rules first; bytes used.
func referenceReplies(_ w: [UInt8], limit: Int) -> (replies: [[UInt8]], failed: Bool, used: Int) {
    var replies: [[UInt8]] = []
    var reply: [UInt8] = []
    var start = 0
    while start < w.count {
        guard let lf = w[start...].firstIndex(of: 0x0a) else {
            return (replies, w.count - start > maxLine, w.count)
        }
        let line = Array(w[start...lf])
        start = lf + 1
        guard line.count <= maxLine, line.count >= 4, line[0..<3].allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
              (200...599).contains(Int(String(decoding: line[0..<3], as: UTF8.self))!),
              [0x20, 0x2d, 0x0d, 0x0a].contains(line[3]), reply.isEmpty || reply.prefix(3) == line.prefix(3),
              reply.count + line.count <= maxReply else { return (replies, true, start) }
        reply += line
        if line[3] != 0x2d {
            replies.append(reply)
            reply = []
            if replies.count == limit { return (replies, false, start) }
        }
    }
    return (replies, false, w.count)
}

/// A session whose greeting and NOOPs await their replies, set up once and copied for each input.
let awaiting = {
    var session = SessionObserver(settings: SessionSettings(proxyName: SessionObserver.proxyName, pipelineSize: 1000,
                                                            onTakeoverCmds: 10, forbidStartTLS: false))
    _ = session.client(Array(Array(repeating: Array(ascii: "NOOP\r\n"), count: noops).joined()))
    return session
}()

fuzzMain { data in
    var input = FuzzInput(data)
    let pieces = input.chunkedRest()
    let (expected, failed, used) = referenceReplies(pieces.flatMap { $0 }, limit: 1 + noops)
    var session = awaiting
    var toClient: [UInt8] = []
    var closed = false
    var fed = 0
    for piece in pieces where fed < used {
        let part = Array(piece.prefix(used - fed))
        fed += part.count
        let out = session.server(part)
        toClient += session.sent(out, client: nil, server: part).toClient
        closed = closed || out.closeClient
    }
    let relayed = expected.flatMap { $0 }
    check(toClient.starts(with: relayed), "client got \(show(toClient)), expected \(show(relayed))")
    var rest = ReplyStream()
    rest.feed(Array(toClient[relayed.count...]))
    if failed {
        check(closed && rest.replies.count == 1 && rest.replies[0].code == 421,
              "after a bad reply the client got \(show(toClient[relayed.count...]))")
    } else {
        check(!closed && rest.replies.isEmpty, "client got \(show(toClient[relayed.count...])) beyond the replies")
    }
}
