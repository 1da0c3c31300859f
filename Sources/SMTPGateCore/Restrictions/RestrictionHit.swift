/// A restriction that refused (or, warned only, would have): which one, in which list, and the reply.
public struct RestrictionHit: Sendable, Equatable {
    public var stage: RestrictionStage
    public var restriction: String
    public var reply: PolicyReply
    /// access(5)'s 421/521: the connection is closed after the reply.
    public var closes = false

    /// `recipient_restrictions reject_rbl_client bl.example`, for the log's `rule=`.
    public var rule: String { "\(stage.optionName) \(restriction)" }
}
