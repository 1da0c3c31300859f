import Crypto

/// The shared v2 key. Built from a key file's bytes so the proxy and the helper agree on what the file means;
/// reading the file (and refusing one readable by group or other) is the caller's job.
public struct HelperKey: Sendable {
    public static let minimumLength = 16

    private let bytes: [UInt8]

    /// The file's bytes with one trailing newline removed (an editor's), or nil if fewer than
    /// `minimumLength` bytes remain.
    public init?(fileContents: [UInt8]) {
        var bytes = fileContents
        if bytes.last == UInt8(ascii: "\n") { bytes.removeLast() }
        guard bytes.count >= Self.minimumLength else { return nil }
        self.bytes = bytes
    }

    // Built per use rather than stored: swift-crypto's `SymmetricKey` is not `Sendable` on Linux.
    var symmetric: SymmetricKey { SymmetricKey(data: bytes) }
}
