/// The helper's answer to a query, given to the reply encoders.
public enum HelperAnswer: Sendable, Equatable {
    /// The conntrack entry's original tuple: the real client and the destination it was connecting to.
    /// `ident` is optional text (empty for none), never containing NUL.
    case found(client: HelperEndpoint, destination: HelperEndpoint, ident: [UInt8] = [])
    case notFound
}
