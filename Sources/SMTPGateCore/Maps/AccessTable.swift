/// A loaded access map. Immutable, so one table is shared by every session.
public protocol AccessTable: Sendable {
    var kind: AccessTableKind { get }
    /// The table as configured: "texthash:/etc/x", "hash:/etc/x".
    var source: String { get }
    /// What was accepted but is probably a mistake, "FILE:LINE: ..." each (a duplicate key, of which
    /// the first is kept as postmap does): for the caller to log once after loading.
    var warnings: [String] { get }
    /// Exactly one query with this key (no partial keys here): texthash compares keys
    /// case-insensitively; cidr takes an IP address text and returns the first matching rule;
    /// regexp and pcre try the patterns in file order on the key as given (not case-folded).
    func find(_ key: String) -> AccessTableResult
}

extension AccessTable {
    public var warnings: [String] { [] }
}
