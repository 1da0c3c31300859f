/// Finds a dot next to a bare CR or bare LF in a DATA body. RFC 5321 ends a message only at
/// CRLF "." CRLF, but some MTAs also take LF "." LF, CRLF "." LF and the like; a client could then end the
/// message early for the MTA while the proxy still reads body (SMTP smuggling), and what follows would
/// reach the MTA unscanned. Only dots that begin a line for some reading are suspect: after a bare CR or
/// LF, or after CRLF and followed by a bare CR or LF. State carries across calls, so no chunk boundary
/// hides the pattern.
struct BareNewlineDot {
    private static let cr: UInt8 = 0x0d, lf: UInt8 = 0x0a, dot: UInt8 = 0x2e
    /// The body begins right after the CRLF that ended the reply to DATA.
    private var last: UInt8 = 0x0a
    private var beforeLast: UInt8 = 0x0d
    /// A line-start dot this many bytes before the next call's first byte, whose next bytes were not here yet.
    private var undecided: Int?

    private enum After { case bare(Int), fine, unknown }

    /// Where the body must stop (nothing from there on may reach the MTA), if it must; at least
    /// `range.lowerBound`.
    mutating func find(_ buf: UnsafeRawBufferPointer, _ range: Range<Int>) -> Int? {
        defer { remember(buf, range) }
        if let back = undecided {
            undecided = nil
            if let stop = check(dot: range.lowerBound - back, buf, range) { return max(stop, range.lowerBound) }
        }
        var from = range.lowerBound
        while let d = Scan.index(of: Self.dot, in: buf, from: from), d < range.upperBound {
            let p1 = byte(buf, d - 1, range)
            let afterCRLF = p1 == Self.lf && byte(buf, d - 2, range) == Self.cr
            if p1 == Self.cr || (p1 == Self.lf && !afterCRLF) { return d }
            if afterCRLF, let stop = check(dot: d, buf, range) { return stop }
            from = d + 1
        }
        return nil
    }

    /// The bare CR or LF right after the line-start dot at `k`; when its bytes are not all here yet, the
    /// dot is looked at again on the next call.
    private mutating func check(dot k: Int, _ buf: UnsafeRawBufferPointer, _ range: Range<Int>) -> Int? {
        switch after(dot: k, buf, range) {
        case .bare(let at): return at
        case .fine: return nil
        case .unknown:
            undecided = range.upperBound - k
            return nil
        }
    }

    private func after(dot k: Int, _ buf: UnsafeRawBufferPointer, _ range: Range<Int>) -> After {
        guard k + 1 < range.upperBound else { return .unknown }
        switch byte(buf, k + 1, range) {
        case Self.lf:
            return .bare(k + 1)
        case Self.cr:
            guard k + 2 < range.upperBound else { return .unknown }
            return byte(buf, k + 2, range) == Self.lf ? .fine : .bare(k + 1)
        default:
            return .fine
        }
    }

    private func byte(_ buf: UnsafeRawBufferPointer, _ k: Int, _ range: Range<Int>) -> UInt8 {
        if k >= range.lowerBound { return buf[k] }
        return k == range.lowerBound - 1 ? last : beforeLast
    }

    private mutating func remember(_ buf: UnsafeRawBufferPointer, _ range: Range<Int>) {
        guard !range.isEmpty else { return }
        beforeLast = range.count >= 2 ? buf[range.upperBound - 2] : last
        last = buf[range.upperBound - 1]
    }
}
