#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The keys of a texthash table packed so a lookup costs about the same at 100 entries and at
/// 100,000: one control byte per slot (empty, or 7 bits of the key's hash), small enough to stay in
/// cache, so a key that is absent (most of the keys access(5) tries: parent domains, `user@`) is
/// answered from it alone; then 8-byte slots saying where the key's bytes and its value are, and all
/// keys in one byte array. A hit reads a slot, then the key's bytes and the value at once. The hash is
/// Swift's `Hasher`, seeded per process, so a client cannot aim its keys at one probe run.
struct TextHashIndex: Sendable {
    /// 0: empty; otherwise 0x80 | the hash's top 7 bits.
    private var control: [UInt8]
    /// The key's offset in `keys` (high 32 bits) and its value (low 32 bits).
    private var slots: [UInt64]
    /// Each key as its length (2 bytes, little-endian), the order it was inserted in (4 bytes, so a
    /// duplicate can name the first), and its bytes.
    private var keys: [UInt8] = []
    private let mask: Int
    private var count = 0

    /// Linear probing, kept at most two-thirds full.
    init(capacity: Int) {
        var size = 16
        while size < capacity + capacity / 2 + 1 { size <<= 1 }
        control = [UInt8](repeating: 0, count: size)
        slots = [UInt64](repeating: 0, count: size)
        mask = size - 1
    }

    /// The value stored for `key`, or nil.
    func find(_ key: String) -> Int? {
        var key = key
        return key.withUTF8 { find($0)?.value }
    }

    /// Adds `key` with `value` unless it is there; when it is, returns the order in which that key
    /// was inserted (0 for the first) and stores nothing. Keys are at most `AccessMaps.maxLineBytes`
    /// long, values and key offsets fit 32 bits (the file is at most `AccessMaps.maxFileBytes`).
    mutating func insert(_ key: String, value: Int) -> Int? {
        var key = key
        return key.withUTF8 { bytes -> Int? in
            if let existing = find(bytes) { return existing.order }
            precondition(bytes.count <= UInt16.max && count < mask, "bounded by the loader")
            let h = Self.hash(bytes)
            var i = Int(truncatingIfNeeded: h) & mask
            while control[i] != 0 { i = (i + 1) & mask }
            control[i] = Self.tag(h)
            slots[i] = UInt64(keys.count) << 32 | UInt64(UInt32(value))
            keys.append(UInt8(truncatingIfNeeded: bytes.count))
            keys.append(UInt8(truncatingIfNeeded: bytes.count >> 8))
            for shift in stride(from: 0, to: 32, by: 8) { keys.append(UInt8(truncatingIfNeeded: count >> shift)) }
            keys.append(contentsOf: bytes)
            count += 1
            return nil
        }
    }

    private func find(_ bytes: UnsafeBufferPointer<UInt8>) -> (value: Int, order: Int)? {
        let h = Self.hash(bytes)
        let tag = Self.tag(h)
        return control.withUnsafeBufferPointer { c in
            slots.withUnsafeBufferPointer { s in
                keys.withUnsafeBufferPointer { k in
                    var i = Int(truncatingIfNeeded: h) & mask
                    while true {
                        let t = c[i]
                        if t == 0 { return nil }
                        if t == tag {
                            let location = s[i]
                            let offset = Int(location >> 32)
                            let length = Int(k[offset]) | Int(k[offset + 1]) << 8
                            if length == bytes.count, length == 0 || memcmp(k.baseAddress! + offset + 6, bytes.baseAddress!, length) == 0 {
                                let order = (2..<6).reduce(0) { $0 | Int(k[offset + $1]) << (8 * ($1 - 2)) }
                                return (Int(location & 0xffff_ffff), order)
                            }
                        }
                        i = (i + 1) & mask
                    }
                }
            }
        }
    }

    private static func hash(_ bytes: UnsafeBufferPointer<UInt8>) -> UInt64 {
        var hasher = Hasher()
        hasher.combine(bytes: UnsafeRawBufferPointer(bytes))
        return UInt64(bitPattern: Int64(hasher.finalize()))
    }

    /// The slot is chosen by the hash's low bits, the tag is its top 7: independent of each other.
    private static func tag(_ h: UInt64) -> UInt8 {
        0x80 | UInt8(truncatingIfNeeded: h >> 57)
    }
}
