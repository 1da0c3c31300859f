import Testing
@testable import SMTPGateCore

/// The proxy name every test session uses; the proxy's own replies read `CODE [x.y.z] gate.test: TEXT`.
let PN = "gate.test"

/// The bytes of an ASCII (or UTF-8) string.
func b(_ s: String) -> [UInt8] { Array(s.utf8) }

/// Bytes shown one character per byte (ISO-8859-1), so `#expect(a == "...")` failures stay readable and
/// no byte is lost or merged in the comparison.
func latin1<S: Sequence>(_ bytes: S) -> String where S.Element == UInt8 {
    var scalars = String.UnicodeScalarView()
    for byte in bytes { scalars.append(Unicode.Scalar(byte)) }
    return String(scalars)
}

func repeated(_ s: String, _ n: Int) -> String { String(repeating: s, count: n) }

/// Resolves a `MachineOutput` segment list against the buffer that was fed, giving the exact bytes the
/// shell would write. A range outside the buffer (or an `.input` segment with no buffer) is a test failure.
func resolve(_ segments: [MachineOutput.Segment], input: [UInt8]?,
             sourceLocation: SourceLocation = #_sourceLocation) -> [UInt8] {
    var out: [UInt8] = []
    for seg in segments {
        switch seg {
        case .bytes(let bytes):
            out += bytes
        case .input(let r):
            guard let input else {
                Issue.record("an .input(\(r)) segment with no input buffer", sourceLocation: sourceLocation)
                continue
            }
            guard r.lowerBound >= 0, r.upperBound <= input.count else {
                Issue.record(".input(\(r)) is outside the \(input.count)-byte buffer", sourceLocation: sourceLocation)
                continue
            }
            out += input[r]
        }
    }
    return out
}

/// Bytes the machine copied into `.bytes` segments (as opposed to ranges of the input).
func ownedByteCount(_ segments: [MachineOutput.Segment]) -> Int {
    segments.reduce(0) { n, s in
        if case .bytes(let b) = s { return n + b.count }
        return n
    }
}

/// The result of one (or several merged) feeds, with `.input` ranges resolved to bytes.
struct Step {
    var toServer: [UInt8] = []
    var toClient: [UInt8] = []
    var events: [SessionEvent] = []
    var closeServer = false
    var closeClient = false
    var halfCloseServer = false
    var goBlind = false
    var pauseClient = false
    var resumeClient = false
    /// The raw outputs, in feed order.
    var raw: [MachineOutput] = []
    var questions: [PolicyPoint] { raw.flatMap(\.questions) }

    /// What the upstream would receive, as text (one character per byte).
    var server: String { latin1(toServer) }
    /// What the client would receive, as text (one character per byte).
    var client: String { latin1(toClient) }

    var transactions: [Transaction] {
        events.compactMap { if case .transaction(let t) = $0 { return t } else { return nil } }
    }

    var takeovers: [String] {
        events.compactMap { if case .takeover(let r) = $0 { return r } else { return nil } }
    }

    init() {}

    init(_ out: MachineOutput, input: [UInt8]?, sourceLocation: SourceLocation = #_sourceLocation) {
        toServer = resolve(out.toServer, input: input, sourceLocation: sourceLocation)
        toClient = resolve(out.toClient, input: input, sourceLocation: sourceLocation)
        events = out.events
        closeServer = out.closeServer
        closeClient = out.closeClient
        halfCloseServer = out.halfCloseServer
        goBlind = out.goBlind
        pauseClient = out.pauseClient
        resumeClient = out.resumeClient
        raw = [out]
    }

    mutating func merge(_ o: Step) {
        toServer += o.toServer
        toClient += o.toClient
        events += o.events
        closeServer = closeServer || o.closeServer
        closeClient = closeClient || o.closeClient
        halfCloseServer = halfCloseServer || o.halfCloseServer
        goBlind = goBlind || o.goBlind
        pauseClient = pauseClient || o.pauseClient
        resumeClient = resumeClient || o.resumeClient
        raw += o.raw
    }
}

/// Drives one `SessionMachine` the way the I/O shell would and keeps everything each side received.
final class Harness {
    var m: SessionMachine
    /// Everything so far, merged.
    var all = Step()
    /// Checks the shell would rely on: nothing is written to a side after it was told to close it.
    var checkNoWritesAfterClose = true
    private(set) var clientCloseRequested = false
    private(set) var serverCloseRequested = false

    init(pipelineSize: Int = 128, onTakeoverCmds: Int = 10, forbidStartTLS: Bool = false,
         configure: (inout SessionSettings) -> Void = { _ in }) {
        var s = SessionSettings(proxyName: PN, pipelineSize: pipelineSize, onTakeoverCmds: onTakeoverCmds,
                                forbidStartTLS: forbidStartTLS)
        configure(&s)
        m = SessionMachine(settings: s)
    }

    init(settings: SessionSettings) {
        m = SessionMachine(settings: settings)
    }

    var settings: SessionSettings { m.settings }

    @discardableResult
    private func record(_ out: MachineOutput, input: [UInt8]?, sourceLocation: SourceLocation) -> Step {
        let step = Step(out, input: input, sourceLocation: sourceLocation)
        if checkNoWritesAfterClose {
            if clientCloseRequested, !step.toClient.isEmpty {
                Issue.record("bytes for the client after closeClient: \(step.client.debugDescription)",
                             sourceLocation: sourceLocation)
            }
            if serverCloseRequested, !step.toServer.isEmpty {
                Issue.record("bytes for the server after closeServer: \(step.server.debugDescription)",
                             sourceLocation: sourceLocation)
            }
        }
        clientCloseRequested = clientCloseRequested || step.closeClient
        serverCloseRequested = serverCloseRequested || step.closeServer
        all.merge(step)
        return step
    }

    // MARK: client side

    @discardableResult
    func answer(_ d: PolicyDecision, sourceLocation: SourceLocation = #_sourceLocation) -> Step {
        record(m.answer(d), input: nil, sourceLocation: sourceLocation)
    }

    @discardableResult
    func client(_ s: String, sourceLocation: SourceLocation = #_sourceLocation) -> Step {
        client(bytes: b(s), sourceLocation: sourceLocation)
    }

    @discardableResult
    func client(bytes: [UInt8], sourceLocation: SourceLocation = #_sourceLocation) -> Step {
        record(m.clientBytes(bytes), input: bytes, sourceLocation: sourceLocation)
    }

    /// Feeds in pieces of `size` bytes; returns the merged result.
    @discardableResult
    func client(chunks bytes: [UInt8], size: Int, sourceLocation: SourceLocation = #_sourceLocation) -> Step {
        inPieces(bytes, size: size) { client(bytes: $0, sourceLocation: sourceLocation) }
    }

    /// Feeds `bytes` in pieces of `size` through `feed` and merges the steps.
    private func inPieces(_ bytes: [UInt8], size: Int, _ feed: ([UInt8]) -> Step) -> Step {
        var merged = Step()
        var i = 0
        while i < bytes.count {
            merged.merge(feed(Array(bytes[i..<min(bytes.count, i + size)])))
            i += size
        }
        return merged
    }

    @discardableResult
    func clientBytewise(_ s: String, sourceLocation: SourceLocation = #_sourceLocation) -> Step {
        client(chunks: b(s), size: 1, sourceLocation: sourceLocation)
    }

    @discardableResult
    func clientClosed(sourceLocation: SourceLocation = #_sourceLocation) -> Step {
        record(m.clientClosed(), input: nil, sourceLocation: sourceLocation)
    }

    // MARK: server side

    @discardableResult
    func server(_ s: String, sourceLocation: SourceLocation = #_sourceLocation) -> Step {
        server(bytes: b(s), sourceLocation: sourceLocation)
    }

    @discardableResult
    func server(bytes: [UInt8], sourceLocation: SourceLocation = #_sourceLocation) -> Step {
        record(m.serverBytes(bytes), input: bytes, sourceLocation: sourceLocation)
    }

    @discardableResult
    func server(chunks bytes: [UInt8], size: Int, sourceLocation: SourceLocation = #_sourceLocation) -> Step {
        inPieces(bytes, size: size) { server(bytes: $0, sourceLocation: sourceLocation) }
    }

    @discardableResult
    func serverBytewise(_ s: String, sourceLocation: SourceLocation = #_sourceLocation) -> Step {
        server(chunks: b(s), size: 1, sourceLocation: sourceLocation)
    }

    @discardableResult
    func serverClosed(sourceLocation: SourceLocation = #_sourceLocation) -> Step {
        record(m.serverClosed(), input: nil, sourceLocation: sourceLocation)
    }

    @discardableResult
    func connectFailed(destination: String, reason: String, sourceLocation: SourceLocation = #_sourceLocation) -> Step {
        record(m.refuse(.connectFailed(destination: destination, reason: reason)), input: nil, sourceLocation: sourceLocation)
    }

    // MARK: timers and daemon

    @discardableResult
    func timedOut(sourceLocation: SourceLocation = #_sourceLocation) -> Step {
        record(m.timedOut(), input: nil, sourceLocation: sourceLocation)
    }

    @discardableResult
    func shutdown(sourceLocation: SourceLocation = #_sourceLocation) -> Step {
        record(m.shutdown(), input: nil, sourceLocation: sourceLocation)
    }

    // MARK: common openings

    static let greeting = "220 mx.test ESMTP ready\r\n"

    static func ehloReply(_ caps: [String], host: String = "mx.test") -> String {
        let lines = [host] + caps
        return lines.enumerated().map { i, l in "250\(i == lines.count - 1 ? " " : "-")\(l)\r\n" }.joined()
    }

    static let defaultCaps = ["PIPELINING", "SIZE 10240000", "8BITMIME", "ENHANCEDSTATUSCODES", "AUTH PLAIN LOGIN"]

    /// Greeting relayed, EHLO relayed and answered: the session is idle in command mode.
    @discardableResult
    func open(caps: [String] = Harness.defaultCaps, helo: String = "client.test",
              sourceLocation: SourceLocation = #_sourceLocation) -> Step {
        var s = server(Harness.greeting, sourceLocation: sourceLocation)
        #expect(s.client == Harness.greeting, sourceLocation: sourceLocation)
        s.merge(client("EHLO \(helo)\r\n", sourceLocation: sourceLocation))
        s.merge(server(Harness.ehloReply(caps), sourceLocation: sourceLocation))
        return s
    }

    /// Greeting and `HELO` (no enhanced status codes from then on).
    @discardableResult
    func openHELO(sourceLocation: SourceLocation = #_sourceLocation) -> Step {
        var s = server(Harness.greeting, sourceLocation: sourceLocation)
        s.merge(client("HELO client.test\r\n", sourceLocation: sourceLocation))
        s.merge(server("250 mx.test\r\n", sourceLocation: sourceLocation))
        return s
    }

    /// `open()`, then MAIL and one RCPT accepted and DATA answered 354: the machine is in the body.
    func openInData(sourceLocation: SourceLocation = #_sourceLocation) {
        open(sourceLocation: sourceLocation)
        let s = client("MAIL FROM:<a@x.test>\r\nRCPT TO:<b@x.test>\r\nDATA\r\n", sourceLocation: sourceLocation)
        #expect(s.server == "MAIL FROM:<a@x.test>\r\nRCPT TO:<b@x.test>\r\nDATA\r\n", sourceLocation: sourceLocation)
        let r = server("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n",
                       sourceLocation: sourceLocation)
        #expect(r.client == "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n",
                sourceLocation: sourceLocation)
    }

    /// Feeds `BDAT 0 LAST`: in command mode the proxy answers it itself (502) and forwards nothing; in a DATA
    /// body it is plain data and is forwarded verbatim. So it tells which mode the machine is in.
    func probeIsInDataBody(sourceLocation: SourceLocation = #_sourceLocation) -> Bool {
        let s = client("BDAT 0 LAST\r\n", sourceLocation: sourceLocation)
        return s.server == "BDAT 0 LAST\r\n" && s.toClient.isEmpty
    }
}

// MARK: - White-box probes (Mirror reads private stored properties; used only for memory bounds)

func storedProperty(_ m: SessionMachine, _ name: String) -> Any? {
    Mirror(reflecting: m).children.first { $0.label == name }?.value
}

func storedCount(_ m: SessionMachine, _ name: String) -> Int {
    guard let v = storedProperty(m, name) else {
        Issue.record("SessionMachine has no stored property '\(name)'")
        return -1
    }
    if let bytes = v as? [UInt8] { return bytes.count }
    return Mirror(reflecting: v).children.count
}

// MARK: - Deterministic random numbers for fuzzing

struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
