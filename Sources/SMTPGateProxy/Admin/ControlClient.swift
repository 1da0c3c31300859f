#if canImport(Glibc)
import Glibc
#endif
import SMTPGateCore

/// The admin command's end of the control socket: one request, the reply lines, with a time bound.
enum ControlClient {
    enum Failure: Error {
        /// Nobody listens at the path: the daemon is down (the admin command works on the store instead).
        case notRunning
        case failed(String)
    }

    /// Whether a daemon answers at `path`: a second daemon must not take over (unlink) a running one's socket.
    static func isAnswering(_ path: String) -> Bool {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        return connectUnix(fd, path) == 0
    }

    private static func connectUnix(_ fd: Int32, _ path: String) -> Int32 {
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else { return -1 }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            for (i, b) in bytes.enumerated() { raw[i] = b }
        }
        return withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
    }

    static func send(_ request: ControlRequest, path: String, timeout: Int = 10) throws(Failure) -> [ControlReply] {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw .failed("socket: \(errnoText())") }
        defer { close(fd) }
        var tv = timeval(tv_sec: timeout, tv_usec: 0)
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        _ = setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        guard path.utf8.count < 108 else { throw .failed("control_path is too long") }
        if connectUnix(fd, path) != 0 {
            if errno == ENOENT || errno == ECONNREFUSED { throw .notRunning }
            throw .failed("cannot connect to \(path): \(errnoText())")
        }
        let out = Array((request.line + "\n").utf8)
        guard out.withUnsafeBytes({ write(fd, $0.baseAddress, $0.count) }) == out.count else {
            throw .failed("cannot send to \(path): \(errnoText())")
        }
        var received: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 { throw .failed("no answer from the daemon at \(path): \(errnoText())") }
            if n == 0 { break }
            received.append(contentsOf: buf[0..<n])
            guard received.count <= 512 << 20 else { throw .failed("the daemon's answer is too long") }
        }
        var replies: [ControlReply] = []
        for line in String(decoding: received, as: UTF8.self).split(separator: "\n") {
            guard let r = ControlReply(parsing: line) else { throw .failed("unreadable answer from the daemon") }
            replies.append(r)
            guard replies.count <= ControlReply.maxRecords else { throw .failed("the daemon's answer is too long") }
        }
        guard let last = replies.last else { throw .failed("the daemon closed without answering") }
        if case .error(let m) = last { throw .failed(m) }
        guard last == .ok else { throw .failed("the daemon's answer ended early") }
        return replies.dropLast()
    }
}
