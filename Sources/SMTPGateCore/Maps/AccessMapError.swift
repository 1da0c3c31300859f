/// A map that cannot be loaded, located so an administrator can go straight to the line.
public struct AccessMapError: Error, Sendable, Equatable, CustomStringConvertible {
    public var file: String
    public var line: Int?
    public var message: String

    public init(file: String, line: Int?, message: String) {
        self.file = file
        self.line = line
        self.message = message
    }

    public var description: String {
        if let line { return "\(file):\(line): \(message)" }
        return "\(file): \(message)"
    }

    /// Text from the file or from a client, quoted for a message: escaped as log lines are, and cut
    /// short so a hostile 4 KiB line does not become a 16 KiB error.
    static func quote(_ text: some StringProtocol) -> String {
        let bytes = Array(text.utf8)
        let shown = LogEscape.escape(bytes.prefix(80))
        return "\"" + shown + (bytes.count > 80 ? "...\"" : "\"")
    }
}
