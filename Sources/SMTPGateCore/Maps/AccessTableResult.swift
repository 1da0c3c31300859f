/// One query's answer.
public enum AccessTableResult: Sendable, Equatable {
    case found(AccessAction)
    case notFound
    /// The answer is unknown: a PCRE match limit was hit, or a result with `$1` substituted is not a
    /// valid action. Postfix answers such a lookup with 451 4.3.5 "Server configuration error".
    case failed(String)
}
