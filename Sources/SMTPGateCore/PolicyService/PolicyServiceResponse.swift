/// What one policy server reply amounted to, as read by `PolicyServiceReader`.
public enum PolicyServiceResponse: Sendable, Equatable {
    /// The `action` attribute's value, raw (an access(5) action such as `DUNNO`, `DEFER_IF_PERMIT text`,
    /// `PREPEND header: value`); reading it as an action is the caller's business.
    case action(String)
    /// Not a policy reply: too long, malformed, without an action, or cut short. The text says which, for a
    /// log line (it quotes no server bytes unescaped).
    case protocolError(String)
}
