/// The allow list: a source may query when it is inside any of the prefixes.
public struct AllowList: Sendable, CustomStringConvertible {
    public let prefixes: [CIDR]

    public init(_ prefixes: [CIDR]) {
        self.prefixes = prefixes
    }

    public func allows(_ address: [UInt8]) -> Bool {
        prefixes.contains { $0.contains(address) }
    }

    public var description: String { prefixes.map(\.description).joined(separator: ",") }
}
