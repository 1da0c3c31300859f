/// An access map's WARN or INFO line: logged, and the evaluation goes on.
public struct RestrictionNote: Sendable, Equatable {
    public enum Kind: String, Sendable {
        case warn, info
        /// A policy service gave no answer; its `default_action` was applied.
        case serviceFailed = "service_failed"
    }

    public var kind: Kind
    /// `sender_restrictions check_sender_access texthash:/etc/x`.
    public var rule: String
    public var text: String
}
