/// Reads one policy server reply as it arrives (a step machine fed bytes): `name=value` lines ended by an
/// empty line, of which only `action` matters; other attributes are ignored, as Postfix does. Holds at most
/// one line; a line over `maxLine` bytes or a reply over `maxReply` bytes is a protocol error at once,
/// without waiting for its end. A CR before a LF is dropped, for servers that end lines the SMTP way.
public struct PolicyServiceReader: Sendable {
    public static let maxLine = 4096
    public static let maxReply = 64 * 1024

    private var line: [UInt8] = []
    private var total = 0
    private var action: String?
    public private(set) var response: PolicyServiceResponse?
    /// Bytes that came after the reply's empty line. A server sends nothing unasked, so a connection that
    /// saw any is out of step and must not be used again.
    public private(set) var extraBytes = 0

    public init() {}

    /// The response once the reply is complete (or once it cannot be one); nil while more is needed.
    public mutating func feed<C: Collection>(_ bytes: C) -> PolicyServiceResponse? where C.Element == UInt8 {
        guard response == nil else {
            extraBytes += bytes.count
            return response
        }
        var index = bytes.startIndex
        while index != bytes.endIndex {
            let byte = bytes[index]
            index = bytes.index(after: index)
            total += 1
            if byte == UInt8(ascii: "\n") {
                take()
            } else {
                line.append(byte)
                if line.count > Self.maxLine {
                    fail("a reply line longer than \(Self.maxLine) bytes")
                } else if total > Self.maxReply {
                    fail("a reply longer than \(Self.maxReply) bytes")
                }
            }
            if response != nil {
                extraBytes = bytes.distance(from: index, to: bytes.endIndex)
                break
            }
        }
        return response
    }

    /// What the exchange amounts to when the connection ended.
    public func end() -> PolicyServiceResponse {
        if let response { return response }
        return .protocolError(total == 0 ? "closed without an answer" : "closed in the middle of an answer")
    }

    private mutating func take() {
        var text = line[...]
        line.removeAll(keepingCapacity: true)
        if text.last == UInt8(ascii: "\r") { text = text.dropLast() }
        if text.isEmpty {
            guard let action else {
                fail(total <= 2 ? "an empty reply" : "a reply without an action attribute")
                return
            }
            response = .action(action)
            return
        }
        guard let equals = text.firstIndex(of: UInt8(ascii: "=")), equals != text.startIndex else {
            fail("a reply line that is not name=value: \"\(LogEscape.escape(text.prefix(64)))\"")
            return
        }
        guard !text.contains(0) else {
            fail("a NUL in a reply line")
            return
        }
        guard text[..<equals].elementsEqual("action".utf8), action == nil else { return }
        let value = text[text.index(after: equals)...]
        guard let decoded = String(validating: value, as: UTF8.self) else {
            fail("malformed UTF-8 in the action")
            return
        }
        guard !decoded.allSatisfy({ $0 == " " || $0 == "\t" }) else {
            fail("an empty action")
            return
        }
        action = decoded
    }

    private mutating func fail(_ reason: String) {
        line = []
        response = .protocolError(reason)
    }
}
