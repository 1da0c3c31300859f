/// Which configured `msg_*` text may replace a reply's own, and the values of its variables.
struct ReplyWording: Sendable, Equatable {
    /// Tried in order; the first one configured wins.
    var keys: [ReplyText]
    var values: [String: String]

    init(_ key: ReplyText, _ values: [String: String] = [:]) {
        self.keys = [key]
        self.values = values
    }

    init(keys: [ReplyText], _ values: [String: String]) {
        self.keys = keys
        self.values = values
    }
}
