/// Reads a fuzzer's input as a sequence of choices. Past the end every read gives zeros (or nothing), so any
/// input, however short, is a complete test.
public struct FuzzInput {
    private let bytes: [UInt8]
    private var at = 0

    public init(_ bytes: [UInt8]) { self.bytes = bytes }

    public var isEmpty: Bool { at >= bytes.count }

    public mutating func byte() -> UInt8 {
        guard at < bytes.count else { return 0 }
        defer { at += 1 }
        return bytes[at]
    }

    public mutating func bytes(_ n: Int) -> [UInt8] {
        let end = min(bytes.count, at + n)
        defer { at = end }
        return Array(bytes[at..<end])
    }

    public mutating func rest() -> [UInt8] { bytes(bytes.count - at) }

    /// A chunking plan followed by the data it cuts: a count `k`, then `k` piece sizes (1...256, used in turn
    /// until the data runs out), then the data. `k` = 0 feeds the data whole. Returns non-empty pieces.
    public mutating func chunkedRest() -> [[UInt8]] {
        let sizes = bytes(Int(byte() % 16)).map { Int($0) + 1 }
        let data = rest()
        guard !sizes.isEmpty else { return data.isEmpty ? [] : [data] }
        var pieces: [[UInt8]] = []
        var start = 0
        var n = 0
        while start < data.count {
            let end = min(data.count, start + sizes[n % sizes.count])
            pieces.append(Array(data[start..<end]))
            start = end
            n += 1
        }
        return pieces
    }
}

extension Array where Element == UInt8 {
    /// The bytes of an ASCII (or UTF-8) string.
    public init(ascii text: String) { self = Array(text.utf8) }

    public func count(of byte: UInt8) -> Int { reduce(0) { $0 + ($1 == byte ? 1 : 0) } }
}
