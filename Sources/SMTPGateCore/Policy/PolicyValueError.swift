/// A policy option value (`lock_on`, `ratelimit_*`) that could not be read; `message` is one line
/// for check-config and the reload log, with the offending input quoted and made printable.
public struct PolicyValueError: Error, Equatable, CustomStringConvertible {
    public let message: String

    public init(_ message: String) {
        self.message = message
    }

    public var description: String { message }
}
