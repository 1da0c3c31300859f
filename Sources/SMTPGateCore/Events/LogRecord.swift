/// One log line before it is rendered: an event name and ordered fields. Every `.text` value
/// here is already safe (escaped with `LogEscape` where the text came from a client or a server).
public struct LogRecord: Sendable, Equatable, CustomStringConvertible {
    public enum Level: String, Sendable {
        case debug, info, notice, warning, error
    }

    public enum Value: Sendable, Equatable {
        case text(String)
        case int(Int)
        case seconds(Double)
        /// Recipients with the upstream's reply code; rendered as repeated `rcpt=ADDR:CODE` in text.
        case recipients([Recipient])
    }

    public struct Recipient: Sendable, Equatable {
        public var address: String
        public var code: Int?
        public init(address: String, code: Int?) {
            self.address = address
            self.code = code
        }
    }

    public var level: Level
    public var event: String
    public var fields: [(String, Value)]
    /// The listener's `syslog_name`: text lines name it instead of the program (Postfix's per-instance names).
    public var tag: String?

    public init(_ level: Level, _ event: String, _ fields: [(String, Value)] = []) {
        self.level = level
        self.event = event
        self.fields = fields
    }

    public var description: String { LogFormat.textBody(self) }

    public static func == (a: LogRecord, b: LogRecord) -> Bool {
        a.level == b.level && a.event == b.event && a.fields.count == b.fields.count
            && zip(a.fields, b.fields).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
    }
}
