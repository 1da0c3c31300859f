/// The outcome of one policy query, after every attempt: the server's action, or why there is none (the
/// caller then applies the service's `default_action`).
public enum PolicyServiceAnswer: Sendable, Equatable {
    /// The `action` value, raw, as the server sent it.
    case action(String)
    /// Every attempt failed (refused, timed out, closed, garbage); the reason is for a log line.
    case failed(reason: String)
}
