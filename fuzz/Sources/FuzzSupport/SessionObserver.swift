#if canImport(Glibc)
import Glibc
#endif
import SMTPGateCore

/// Drives a `SessionMachine` the way the I/O shell does and checks, after every call, what must hold whatever
/// either peer sends:
/// - `.input` segments lie inside the buffer just fed, in order (`resolve`); calls that fed none have none.
/// - After an output with `closeClient`, every later output is empty; after `closeServer`, nothing more goes
///   to the server.
/// - Blind (after `goBlind`): each side's bytes reach the other unchanged and alone.
/// - Otherwise the client only ever receives whole, well-formed replies (`ReplyStream`), and no output ends
///   inside one.
/// - Output is bounded by input: to the server, the client's bytes plus the proxy's one QUIT, one final dot
///   per verdict and one `nat_header` per 354; to the client, the server's bytes plus at most one reply of
///   the proxy's own per client line, per event call, the greeting it may stand in for and one spare.
///   The count of replies is bounded the same way.
/// - Pause and resume alternate; a message's body is only reported between `messageStart` and `messageEnd`,
///   and `messageEnd` is its un-stuffed size; numbered transactions are reported once each, in order.
public struct SessionObserver {
    public private(set) var machine: SessionMachine
    public private(set) var replies = ReplyStream()
    /// The proxy told the shell to close the upstream.
    public private(set) var serverClosed = false
    /// The shell must not read the client now.
    public private(set) var paused = false
    /// The proxy told the shell to close the client (and so both sides).
    private var clientClosed = false
    private var blind = false
    /// A message began and has not ended yet.
    private var inMessage = false

    private var clientIn = 0, clientLines = 0, serverIn = 0, serverLines = 0, events = 0, verdicts = 0
    private var toServerTotal = 0, toClientTotal = 0
    /// 354 replies the client got (each may have carried a `nat_header` upstream), of the first `counted` replies.
    private var dataStarts = 0, counted = 0
    private var unstuffer = DotUnstuffer()
    private var messageBytes = 0
    private var lastTransaction = 0
    /// Longer than any reply the proxy writes itself.
    private let ownReplyBound: Int

    public init(settings: SessionSettings, natHeader: [UInt8]? = nil) {
        machine = SessionMachine(settings: settings)
        machine.natHeader = natHeader
        ownReplyBound = 512 + settings.proxyName.utf8.count
    }

    public mutating func client(_ bytes: [UInt8]) -> MachineOutput {
        clientIn += bytes.count
        clientLines += bytes.count(of: 0x0a)
        return observe(machine.clientBytes(bytes), client: bytes, server: nil)
    }

    public mutating func server(_ bytes: [UInt8]) -> MachineOutput {
        serverIn += bytes.count
        serverLines += bytes.count(of: 0x0a)
        return observe(machine.serverBytes(bytes), client: nil, server: bytes)
    }

    public mutating func clientEOF() -> MachineOutput { event(machine.clientClosed()) }
    public mutating func serverEOF() -> MachineOutput { event(machine.serverClosed()) }
    public mutating func timedOut() -> MachineOutput { event(machine.timedOut()) }
    public mutating func shutdown() -> MachineOutput { event(machine.shutdown()) }

    public mutating func verdict(_ verdict: MessageVerdict) -> MachineOutput {
        verdicts += 1
        return event(machine.verdict(verdict, scan: nil))
    }

    private mutating func event(_ out: MachineOutput) -> MachineOutput {
        events += 1
        return observe(out, client: nil, server: nil)
    }

    /// The bytes of one output that went to the server and to the client, resolved.
    public struct Sent {
        public var toServer: [UInt8]
        public var toClient: [UInt8]
    }

    public func sent(_ out: MachineOutput, client: [UInt8]?, server: [UInt8]?) -> Sent {
        Sent(toServer: resolve(out.toServer, input: client, "toServer"),
             toClient: resolve(out.toClient, input: server, "toClient"))
    }

    /// FUZZ_TRACE=1 prints every call and its output, to read a crash input's session.
    private static let tracing = getenv("FUZZ_TRACE") != nil

    private mutating func observe(_ out: MachineOutput, client: [UInt8]?, server: [UInt8]?) -> MachineOutput {
        if Self.tracing { trace(out, client: client, server: server) }
        if clientClosed {
            check(out == MachineOutput(), "output after closeClient: \(out)")
            return out
        }
        let s = sent(out, client: client, server: server)
        let body = resolve(out.body, input: client, "body")
        if serverClosed { check(s.toServer.isEmpty, "bytes for the server after closeServer: \(show(s.toServer))") }
        if blind {
            if let client { check(s.toServer == client && s.toClient.isEmpty, "blind relay changed client bytes") }
            if let server { check(s.toClient == server && s.toServer.isEmpty, "blind relay changed server bytes") }
        } else {
            // The output that goes blind ends with the server's first raw bytes, as an `.input` range.
            let replyBytes = out.goBlind ? resolve(out.toClient.filter { if case .bytes = $0 { true } else { false } },
                                                   input: nil, "toClient") : s.toClient
            replies.feed(replyBytes)
            check(replies.atReplyBoundary, "an output ends inside a reply: \(show(replyBytes))")
            toClientTotal += replyBytes.count
            dataStarts += replies.replies[counted...].count { $0.code == 354 }
            counted = replies.replies.count
            let ownReplies = clientLines + 1 + events + 2
            check(toClientTotal <= serverIn + ownReplies * ownReplyBound,
                  "\(toClientTotal) bytes to the client for \(serverIn) from the server and \(clientLines) client lines")
            check(replies.replies.count <= serverLines + ownReplies,
                  "\(replies.replies.count) replies for \(serverLines) server lines and \(clientLines) client lines")
        }
        toServerTotal += s.toServer.count
        let extra = 6 + 3 * verdicts + (machine.natHeader?.count ?? 0) * dataStarts
        check(toServerTotal <= clientIn + extra,
              "\(toServerTotal) bytes to the server for \(clientIn) from the client")
        if out.pauseClient { check(!paused, "pauseClient twice"); paused = true }
        if out.resumeClient { check(paused, "resumeClient without pauseClient"); paused = false }
        observeMessage(out, body)
        for case .transaction(let t) in out.events {
            check(t.size >= 0, "negative size")
            guard let n = t.number else { continue }
            check(n > lastTransaction && n <= machine.transactions, "transaction \(n) after \(lastTransaction)")
            lastTransaction = n
        }
        blind = blind || out.goBlind
        clientClosed = clientClosed || out.closeClient
        serverClosed = serverClosed || out.closeServer
        return out
    }

    private func trace(_ out: MachineOutput, client: [UInt8]?, server: [UInt8]?) {
        let s = sent(out, client: client, server: server)
        // stderr, unbuffered: the line before a failed check must not be lost with the process.
        func print(_ line: String) { _ = Array((line + "\n").utf8).withUnsafeBytes { write(2, $0.baseAddress, $0.count) } }
        print(client.map { "client \(show($0))" } ?? server.map { "server \(show($0))" } ?? "event")
        if !s.toServer.isEmpty { print("  -> server \(show(s.toServer))") }
        if !s.toClient.isEmpty { print("  -> client \(show(s.toClient))") }
        let flags = [("closeClient", out.closeClient), ("closeServer", out.closeServer), ("goBlind", out.goBlind),
                     ("pause", out.pauseClient), ("resume", out.resumeClient), ("messageStart", out.messageStart)]
        let set = flags.filter(\.1).map(\.0) + (out.messageEnd.map { ["messageEnd \($0)"] } ?? [])
        if !set.isEmpty || !out.events.isEmpty { print("  \(set.joined(separator: " ")) \(out.events)") }
    }

    private mutating func observeMessage(_ out: MachineOutput, _ body: [UInt8]) {
        let holding = machine.settings.holdFinalDot
        if out.messageStart {
            check(holding, "messageStart without a scanner")
            inMessage = true
            unstuffer = DotUnstuffer()
            messageBytes = 0
        }
        if !body.isEmpty {
            check(inMessage, "body bytes outside a message")
            messageBytes += unstuffer.unstuff(body).count
        }
        if let end = out.messageEnd {
            check(inMessage, "messageEnd outside a message")
            check(end == messageBytes, "messageEnd \(end) for a body of \(messageBytes) un-stuffed bytes")
            inMessage = false
        }
    }
}
