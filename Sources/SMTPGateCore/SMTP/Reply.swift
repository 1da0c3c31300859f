/// One complete server reply (all its lines, byte for byte as received).
struct Reply {
    var code: Int
    var lines: [[UInt8]]

    var bytes: [UInt8] { lines.flatMap { $0 } }
    var isPositive: Bool { code >= 200 && code < 300 }
}

/// Collects server reply lines; knows where a (multi-line) reply ends. Bounded: a server that sends an
/// endless line or reply is a protocol error, not a memory sink.
struct ReplyReader {
    static let maxLine = 16 * 1024
    static let maxReply = 256 * 1024

    enum Failure: Error { case malformed, tooLong }

    private var partial: [UInt8] = []
    private var lines: [[UInt8]] = []
    private var size = 0
    private var code = 0

    /// Consumes bytes up to and including the next complete reply, returning it and the index after it.
    mutating func next(_ buf: UnsafeRawBufferPointer, from start: Int) throws(Failure) -> (Reply, Int)? {
        var i = start
        while i < buf.count {
            guard let lf = Scan.index(of: 0x0a, in: buf, from: i) else {
                partial.append(contentsOf: buf[i..<buf.count])
                guard partial.count <= Self.maxLine else { throw .tooLong }
                return nil
            }
            partial.append(contentsOf: buf[i...lf])
            i = lf + 1
            guard partial.count <= Self.maxLine else { throw .tooLong }
            let line = partial
            partial = []
            guard line.count >= 4, let c = Self.code(line) else { throw .malformed }
            let sep = line[3]
            guard sep == 0x20 || sep == 0x2d || sep == 0x0d || sep == 0x0a else { throw .malformed }
            if lines.isEmpty { code = c } else if c != code { throw .malformed }
            size += line.count
            guard size <= Self.maxReply else { throw .tooLong }
            lines.append(line)
            if sep != 0x2d {
                let reply = Reply(code: code, lines: lines)
                lines = []
                size = 0
                return (reply, i)
            }
        }
        return nil
    }

    static func code(_ line: [UInt8]) -> Int? {
        var c = 0
        for k in 0..<3 {
            let b = line[k]
            guard b >= 0x30, b <= 0x39 else { return nil }
            c = c * 10 + Int(b - 0x30)
        }
        return c >= 200 && c <= 599 ? c : nil
    }
}

enum Scan {
    #if canImport(Glibc)
    @inline(__always)
    static func index(of byte: UInt8, in buf: UnsafeRawBufferPointer, from: Int) -> Int? {
        guard from < buf.count, let base = buf.baseAddress else { return nil }
        guard let p = memchr(base + from, Int32(byte), buf.count - from) else { return nil }
        return base.distance(to: UnsafeRawPointer(p))
    }
    #else
    static func index(of byte: UInt8, in buf: UnsafeRawBufferPointer, from: Int) -> Int? {
        guard from < buf.count else { return nil }
        return buf[from...].firstIndex(of: byte)
    }
    #endif
}

#if canImport(Glibc)
import Glibc
#endif
