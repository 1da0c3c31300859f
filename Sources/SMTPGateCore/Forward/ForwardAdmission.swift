/// What the allow/deny rules of a `[forward]` listener decide for one client, named as rinetd logs it.
///
/// rinetd 0.73 (`rinetd.c`, `logMessages[]`) writes exactly these results, in this order of its table:
/// `unknown-error`, `done-local-closed`, `done-remote-closed`, `accept-failed -`,
/// `local-socket-failed -`, `local-bind-failed -`, `local-connect-failed -`, `opened`,
/// `not-allowed`, `denied`. (The ` -` is part of the four failure strings. In rinetd "local" is the
/// destination side and "remote" the client: `done-local-closed` means the destination closed first.)
/// A connection the rules admit is logged `opened` once the connect to the destination has started;
/// refused ones are logged `not-allowed` (no allow rule matched) or `denied` (a deny rule matched).
public enum ForwardAdmission: Equatable, Sendable {
    case allowed
    /// Allow rules exist and none matched; `global` when it was the global list.
    case notAllowed(global: Bool)
    /// A deny rule matched.
    case denied(pattern: AddressPattern, global: Bool)

    /// rinetd's result name: `opened`, `not-allowed` or `denied`.
    public var result: String {
        switch self {
        case .allowed: return "opened"
        case .notAllowed: return "not-allowed"
        case .denied: return "denied"
        }
    }
}
