/// A map that cannot be loaded is a configuration problem like any other: the same "FILE:LINE: message".
public typealias AccessMapError = ConfigError

extension ConfigError {
    /// Text from the file or from a client, quoted for a message: escaped as log lines are, and cut
    /// short so a hostile 4 KiB line does not become a 16 KiB error.
    static func quote(_ text: some StringProtocol) -> String {
        let bytes = Array(text.utf8)
        let shown = LogEscape.escape(bytes.prefix(80))
        return "\"" + shown + (bytes.count > 80 ? "...\"" : "\"")
    }
}
