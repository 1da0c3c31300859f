/// The reply an access map asks for (access(5) REJECT, DEFER, 4NN/5NN actions).
public struct AccessReply: Sendable, Equatable {
    /// Postfix's `access_map_reject_code` default: what a bare REJECT answers.
    public static let rejectCode = 554
    /// Postfix's `access_map_defer_code` default: DEFER, DEFER_IF_PERMIT and DEFER_IF_REJECT.
    public static let deferCode = 450

    public var code: Int
    /// The RFC 3463 code: the map's own when it wrote one after the reply code or action, otherwise
    /// Postfix's default for the code's class ("5.7.1" for 5NN, "4.7.1" for 4NN). Postfix would also
    /// turn an address status (5.1.1) into a sender or a non-address one depending on what was looked
    /// up; that is left to the caller, which knows.
    public var enhanced: String?
    /// The map's text; nil when it gave none (Postfix then says "Access denied", or "Service
    /// unavailable" for DEFER_IF_PERMIT and DEFER_IF_REJECT).
    public var text: String?

    public init(code: Int, enhanced: String? = nil, text: String? = nil) {
        self.code = code
        self.enhanced = enhanced
        self.text = text
    }
}
