#if canImport(Glibc)
import Glibc
#endif
import NIOCore

/// Whether another socket already listens on a port, asked before the daemon binds its own. Every listening
/// socket sets SO_REUSEPORT (one per event loop, and the hand-over when a reload replaces a listener on the
/// same port), so the kernel would let a second smtpgate of the same user bind the port too and split the
/// connections between them. A plain bind, without SO_REUSEPORT, is refused while any socket listens there.
enum PortProbe {
    /// True when the port is taken; false when it is free or the probe cannot tell (the real bind then
    /// reports what is wrong, e.g. an address that is not local).
    static func inUse(host: String, port: Int) -> Bool {
        guard let address = try? SocketAddress(ipAddress: host, port: port) else { return false }
        let fd = socket(address.protocol.rawValue, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var one: Int32 = 1
        // A port whose old connections linger in TIME_WAIT is free.
        _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        let rc = address.withSockAddr { sa, length in bind(fd, sa, socklen_t(length)) }
        return rc != 0 && errno == EADDRINUSE
    }
}
