#if canImport(Glibc)
import Glibc
#endif

/// Finds the end of a DATA body: CRLF "." CRLF, where the body's start counts as a line start.
/// It keeps its state across calls, so no packet boundary can hide or fake the terminator; a bare LF
/// never ends a line.
struct DataEndScanner {
    private enum State: UInt8 { case midLine, cr, lineStart, dot, dotCR }
    private var state = State.lineStart
    /// Lines that began with a dot so far: each carries one stuffing dot, the terminator's line included.
    private(set) var dotLines = 0

    /// How many of the bytes scanned last could still be the start of the terminator line: 1 after a dot at
    /// a line start, 2 after that dot and a CR. The shell holding the final dot must not send them yet.
    var terminatorPrefix: Int {
        switch state {
        case .dot: return 1
        case .dotCR: return 2
        default: return 0
        }
    }

    /// Index just past the terminating LF, or nil when the buffer does not finish the body.
    mutating func scan(_ buf: UnsafeRawBufferPointer, from start: Int) -> Int? {
        var i = start
        let n = buf.count
        while i < n {
            if state == .midLine {
                guard let cr = Scan.index(of: 0x0d, in: buf, from: i) else { return nil }
                state = .cr
                i = cr + 1
                continue
            }
            let b = buf[i]
            i += 1
            switch state {
            case .cr:
                state = b == 0x0a ? .lineStart : (b == 0x0d ? .cr : .midLine)
            case .lineStart:
                if b == 0x2e { dotLines += 1 }
                state = b == 0x2e ? .dot : (b == 0x0d ? .cr : .midLine)
            case .dot:
                state = b == 0x0d ? .dotCR : .midLine
            case .dotCR:
                if b == 0x0a {
                    state = .lineStart
                    return i
                }
                state = b == 0x0d ? .cr : .midLine
            case .midLine:
                break
            }
        }
        return nil
    }
}
