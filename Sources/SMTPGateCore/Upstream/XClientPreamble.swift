/// What the proxy says to the fixed server before the client's dialogue in mode fixed+xclient:
/// EHLO, then XCLIENT with the real client's address and port (Postfix's XCLIENT extension), then the
/// server's fresh 220 greeting becomes the client's greeting. Pure: fed the server's bytes, it says what
/// to send and when it is done.
public struct XClientPreamble {
    public enum Step: Equatable {
        /// Send these bytes to the server and feed its answer.
        case send([UInt8])
        /// Feed more server bytes.
        case waiting
        /// The preamble is over: `greeting` is the reply the client gets first; bytes of the buffer from
        /// `rest` on belong to the session.
        case done(greeting: [UInt8], rest: Int)
        /// The server does not take XCLIENT from us: the session cannot start.
        case failed(String)
    }

    private enum State { case greeting, ehlo, xclient, finished }

    private let heloName: String
    private let attributes: [(String, String)]
    private var state = State.greeting
    private var reader = ReplyReader()

    /// `client` is the real client; its address is written `IPV6:...` for IPv6 as XCLIENT requires.
    public init(heloName: String, client: IPAddress, clientPort: Int) {
        self.heloName = heloName
        let addr = client.family == .v6 ? "IPV6:\(client.text)" : client.text
        self.attributes = [("ADDR", addr), ("PORT", String(clientPort))]
    }

    public mutating func serverBytes(_ buf: UnsafeRawBufferPointer) -> Step {
        var i = 0
        while i < buf.count {
            let next: (Reply, Int)?
            do {
                next = try reader.next(buf, from: i)
            } catch {
                return fail("bad reply from destination")
            }
            guard let (reply, after) = next else { return .waiting }
            i = after
            switch state {
            case .greeting:
                guard reply.code == 220 else { return fail("destination greeted with \(reply.code)") }
                state = .ehlo
                return .send(Array("EHLO \(heloName)\r\n".utf8))
            case .ehlo:
                guard reply.isPositive else { return fail("destination refused EHLO with \(reply.code)") }
                let offered = Self.xclientAttributes(reply)
                guard let offered else { return fail("destination does not offer XCLIENT") }
                let sent = attributes.filter { offered.contains($0.0) }
                guard sent.contains(where: { $0.0 == "ADDR" }) else { return fail("destination's XCLIENT does not take ADDR") }
                state = .xclient
                let line = "XCLIENT " + sent.map { "\($0.0)=\($0.1)" }.joined(separator: " ") + "\r\n"
                return .send(Array(line.utf8))
            case .xclient:
                guard reply.code == 220 else { return fail("destination refused XCLIENT with \(reply.code)") }
                state = .finished
                return .done(greeting: reply.bytes, rest: i)
            case .finished:
                return .done(greeting: [], rest: i)
            }
        }
        return .waiting
    }

    public mutating func serverBytes(_ bytes: [UInt8]) -> Step {
        bytes.withUnsafeBytes { serverBytes($0) }
    }

    private mutating func fail(_ why: String) -> Step {
        state = .finished
        return .failed(why)
    }

    /// The attribute names after `250-XCLIENT`, or nil when the keyword is absent.
    static func xclientAttributes(_ reply: Reply) -> Set<String>? {
        for line in reply.lines.dropFirst() where EHLOFilter.keyword(line) == "XCLIENT" {
            let text = String(decoding: line.dropFirst(4), as: UTF8.self)
            let words = text.split(whereSeparator: { $0 == " " || $0 == "\r" || $0 == "\n" }).dropFirst()
            return Set(words.map { $0.uppercased() })
        }
        return nil
    }
}
