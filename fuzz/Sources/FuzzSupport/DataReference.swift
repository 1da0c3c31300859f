/// Plain, whole-buffer statements of the DATA-body rules (RFC 5321 4.1.1.4, 4.5.2), to compare the
/// streaming scanners against. The body begins right after a CRLF, so its first byte starts a line.
public enum DataReference {
    static let cr: UInt8 = 0x0d, lf: UInt8 = 0x0a, dot: UInt8 = 0x2e

    /// A line starts at `p`: the body's start, or right after CR LF (a bare LF never ends a line).
    public static func isLineStart(_ w: [UInt8], _ p: Int) -> Bool {
        p == 0 || (p >= 2 && w[p - 2] == cr && w[p - 1] == lf)
    }

    /// The index just past the first "." CRLF that starts a line: the end of the message on the wire.
    public static func end(_ w: [UInt8]) -> Int? {
        var p = 0
        while p + 3 <= w.count {
            if w[p] == dot, w[p + 1] == cr, w[p + 2] == lf, isLineStart(w, p) { return p + 3 }
            p += 1
        }
        return nil
    }

    /// The body as the recipient sees it: the first "." of every line that starts with one is dropped.
    public static func unstuff(_ w: [UInt8]) -> [UInt8] {
        w.indices.filter { !(w[$0] == dot && isLineStart(w, $0)) }.map { w[$0] }
    }

    /// How many bytes at the end of `w` could still begin the terminator line: "." or "." CR starting a line.
    public static func terminatorPrefix(_ w: [UInt8]) -> Int {
        let n = w.count
        if n >= 1, w[n - 1] == dot, isLineStart(w, n - 1) { return 1 }
        if n >= 2, w[n - 2] == dot, w[n - 1] == cr, isLineStart(w, n - 2) { return 2 }
        return 0
    }

    /// Where the first dot next to a bare CR or LF is (SMTP smuggling: a line start for some MTA's reading):
    /// the dot itself when a bare CR or LF precedes it, the byte after it when it starts a CRLF line and a bare
    /// CR or LF follows. A dot whose next bytes are not in `w` yet is not decided.
    public static func bareNewlineDot(_ w: [UInt8]) -> Int? {
        func at(_ k: Int) -> UInt8 { k >= 0 ? w[k] : (k == -1 ? lf : cr) }
        for d in w.indices where w[d] == dot {
            let p1 = at(d - 1), p2 = at(d - 2)
            if p1 == cr || (p1 == lf && p2 != cr) { return d }
            guard p1 == lf, d + 1 < w.count else { continue }
            if w[d + 1] == lf { return d + 1 }
            if w[d + 1] == cr, d + 2 < w.count, w[d + 2] != lf { return d + 1 }
        }
        return nil
    }
}
