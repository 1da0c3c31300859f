/// A map value or pattern that cannot be used; the table loader adds the file and line.
struct AccessValueError: Error, Sendable, Equatable {
    var message: String

    init(_ message: String) {
        self.message = message
    }
}
