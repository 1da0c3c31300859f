/// A command the proxy answered itself with a refusal from its own policy (`auth_require` now; the access
/// restrictions later), logged as `reject command=`. Rate limits have their own `ratelimit` line.
public struct CommandRefusal: Sendable, Equatable {
    public var point: PolicyPoint
    public var reply: PolicyReply

    public init(point: PolicyPoint, reply: PolicyReply) {
        self.point = point
        self.reply = reply
    }
}
