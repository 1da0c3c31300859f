import FuzzSupport
import SMTPGateCore

// The session machine facing a hostile server: a client speaking a canned dialogue (every command the proxy
// treats specially, a dot-stuffed body, a SASL exchange, a BDAT chunk, TLS bytes), sent whole or cut at a
// fuzzer-chosen point, interleaved with fuzzed server bytes, closes, timeouts, shutdown and verdicts.
// SessionObserver checks every output: nothing after close, well-formed replies only, blind relay verbatim,
// output bounded by input, messages and transactions consistent.
let script: [[UInt8]] = [
    "EHLO client.test\r\n", "MAIL FROM:<a@x.test> SIZE=120\r\n", "RCPT TO:<b@x.test>\r\n", "DATA\r\n",
    "Subject: fuzz\r\n\r\n..stuffed\r\nbody\r\n.\r\n", "AUTH PLAIN\r\n", "dGVzdAB0ZXN0AHRlc3Q=\r\n",
    "BDAT 4 LAST\r\nabcd", "STARTTLS\r\n", "NOOP\r\n", "RSET\r\n", "HELO client.test\r\n", "VRFY postmaster\r\n",
    "XEXCH50 2 2\r\n", "QUIT\r\n", "\u{16}\u{03}\u{01}\u{00}\u{05}hello",
].map { Array(ascii: $0) }

let verdicts: [MessageVerdict] = [.deliver, .virus("Eicar-Test-Signature"), .spam(score: 1000, threshold: 5),
                                  .notScanned("timeout", spool: false)]

fuzzMain { data in
    var input = FuzzInput(data)
    var session = SessionObserver.fuzzed(&input)
    var clientEOF = false, serverEOF = false
    while !input.isEmpty {
        let op = input.byte()
        switch op % 8 {
        case 0, 1, 2:
            let line = script[Int(input.byte()) % script.count]
            let cut = op % 8 == 2 ? Int(input.byte()) % line.count : 0
            for part in [line[..<cut], line[cut...]] where !part.isEmpty && !clientEOF && !session.paused {
                _ = session.client(Array(part))
            }
        case 3, 4, 5:
            let bytes = input.bytes(Int(input.byte()) + 1)
            if !serverEOF && !session.serverClosed { _ = session.server(bytes) }
        case 6:
            switch input.byte() % 4 {
            case 0: clientEOF = true; _ = session.clientEOF()
            case 1: serverEOF = true; _ = session.serverEOF()
            case 2: _ = session.timedOut()
            default: _ = session.shutdown()
            }
        default:
            _ = session.verdict(verdicts[Int(input.byte()) % verdicts.count])
        }
    }
}
