/// A command the proxy answered itself with a refusal from its own policy (`auth_require`, `regex_*`; the
/// access restrictions later), logged as `reject command=`. Rate limits have their own `ratelimit` line.
public struct CommandRefusal: Sendable, Equatable {
    public var point: PolicyPoint
    public var reply: PolicyReply
    /// The option or rule that refused it, when there is more than one of a kind (`regex_reject_helo`).
    public var rule: String?
    /// Why the rule could not decide, for a temporary refusal (a PCRE limit).
    public var error: String?
    /// Not made: `warn_if_reject` or `policy_mode warn` turned it into a `reject_warning` line.
    public var warning: Bool

    public init(point: PolicyPoint, reply: PolicyReply, rule: String? = nil, error: String? = nil, warning: Bool = false) {
        self.point = point
        self.reply = reply
        self.rule = rule
        self.error = error
        self.warning = warning
    }
}
