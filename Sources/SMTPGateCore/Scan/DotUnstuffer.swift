/// Turns a DATA body as sent on the wire (dot-stuffed, terminator already cut off) into the message the
/// recipient sees: the first "." of every line that begins with one is dropped. State carries across
/// calls, so a chunk boundary anywhere (even between CR and LF) changes nothing.
public struct DotUnstuffer: Sendable {
    private var atLineStart = true
    private var afterCR = false

    public init() {}

    /// Calls `emit` with the un-stuffed pieces of `buf`, in order, as ranges of `buf` (no copy).
    public mutating func unstuff(_ buf: UnsafeRawBufferPointer, _ emit: (Range<Int>) -> Void) {
        var start = 0
        var i = 0
        while i < buf.count {
            let b = buf[i]
            if atLineStart, b == 0x2e {
                if i > start { emit(start..<i) }
                start = i + 1
            }
            atLineStart = afterCR && b == 0x0a
            afterCR = b == 0x0d
            i += 1
        }
        if i > start { emit(start..<i) }
    }

    public mutating func unstuff(_ bytes: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        bytes.withUnsafeBytes { buf in unstuff(buf) { out.append(contentsOf: buf[$0]) } }
        return out
    }
}
