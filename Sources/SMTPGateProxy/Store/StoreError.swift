/// Why the state store cannot be used: one line naming the file and what to do about it.
public struct StoreError: Error, CustomStringConvertible, Equatable {
    public enum Kind: Sendable, Equatable {
        case missingDirectory, notWritable, notADatabase, newerSchema, busy, full, other
    }

    public let kind: Kind
    public let description: String

    public init(_ kind: Kind, _ description: String) {
        self.kind = kind
        self.description = description
    }
}
