/// Which way a packet travels; each decoder is told which one it expects, so a reply echoed back at the
/// helper or a query reflected at the proxy is refused as `badFlags`.
public enum HelperDirection: Sendable, Equatable {
    case query
    case reply
}

/// What the flags field says, shared by both protocol versions.
public enum HelperPacketKind: Sendable, Equatable {
    case query
    case found
    case notFound

    public var direction: HelperDirection { self == .query ? .query : .reply }
}

enum HelperFlags {
    static let query: UInt16 = 0x0001
    static let reply: UInt16 = 0x0002
    static let found: UInt16 = 0x0010
    static let notFound: UInt16 = 0x0020

    static func encode(_ kind: HelperPacketKind) -> UInt16 {
        switch kind {
        case .query: query
        case .found: reply | found
        case .notFound: reply | notFound
        }
    }

    /// Exact combinations only: a packet with stray bits set was not written by a conforming peer.
    static func decode(_ flags: UInt16, expecting direction: HelperDirection) -> HelperPacketKind? {
        switch (direction, flags) {
        case (.query, query): .query
        case (.reply, reply | found): .found
        case (.reply, reply | notFound): .notFound
        default: nil
        }
    }
}
