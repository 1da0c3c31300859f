/// Big-endian field access for the fixed-layout helper packets. Callers check the length first.
extension Array where Element == UInt8 {
    mutating func appendBigEndian<T: FixedWidthInteger>(_ value: T) {
        Swift.withUnsafeBytes(of: value.bigEndian) { append(contentsOf: $0) }
    }

    func bigEndian<T: FixedWidthInteger>(_: T.Type, at offset: Int) -> T {
        var value: T = 0
        for byte in self[offset..<offset + T.bitWidth / 8] { value = value << 8 | T(byte) }
        return value
    }

    func allZero(_ range: Range<Int>) -> Bool { self[range].allSatisfy { $0 == 0 } }
}
