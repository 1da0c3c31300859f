/// Turns a DATA body as sent on the wire (dot-stuffed, terminator already cut off) into the message the
/// recipient sees: the first "." of every line that begins with one is dropped. State carries across
/// calls, so a chunk boundary anywhere (even between CR and LF) changes nothing. Only line ends are looked
/// at (with memchr), so a body costs little more than a copy.
public struct DotUnstuffer: Sendable {
    private var atLineStart = true
    private var afterCR = false

    public init() {}

    /// Calls `emit` with the un-stuffed pieces of `buf`, in order, as ranges of `buf` (no copy).
    public mutating func unstuff(_ buf: UnsafeRawBufferPointer, _ emit: (Range<Int>) -> Void) {
        let n = buf.count
        guard n > 0 else { return }
        var start = atLineStart && buf[0] == 0x2e ? 1 : 0
        var from = 0
        while let lf = Scan.index(of: 0x0a, in: buf, from: from) {
            let crBefore = lf > 0 ? buf[lf - 1] == 0x0d : afterCR
            if crBefore, lf + 1 < n, buf[lf + 1] == 0x2e {
                emit(start..<(lf + 1))
                start = lf + 2
            }
            from = lf + 1
        }
        if start < n { emit(start..<n) }
        let last = buf[n - 1]
        atLineStart = last == 0x0a && (n >= 2 ? buf[n - 2] == 0x0d : afterCR)
        afterCR = last == 0x0d
    }

    public mutating func unstuff(_ bytes: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        bytes.withUnsafeBytes { buf in unstuff(buf) { out.append(contentsOf: buf[$0]) } }
        return out
    }
}
