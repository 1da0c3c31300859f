/// The end of an evaluation: the command goes on, or this hit refuses it. `warnings` are the refusals
/// `warn_if_reject` or `policy_mode warn` turned into `reject_warning` lines, in order; `notes` are the
/// maps' WARN and INFO lines; `prepend` the header lines their PREPEND actions asked for.
public struct RestrictionOutcome: Sendable, Equatable {
    public var refusal: RestrictionHit?
    public var warnings: [RestrictionHit]
    public var notes: [RestrictionNote] = []
    public var prepend: [String] = []
}
