#if canImport(Glibc)
import Glibc
#endif

/// Reads a v2 key file the same way for the proxy (`remote_udp_key_file`) and the helper (`--key-file`):
/// a regular file that neither group nor other may access, holding at least `HelperKey.minimumLength` bytes
/// after one trailing newline is removed.
public enum HelperKeyFile {
    public struct Problem: Error, Sendable, CustomStringConvertible {
        public let description: String
    }

    static let maxBytes = 65536

    public static func read(_ path: String) throws(Problem) -> HelperKey {
        func problem(_ what: String) -> Problem { Problem(description: "\(path): \(what)") }
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)
        guard fd >= 0 else { throw problem("cannot open: \(errnoText())") }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw problem("cannot stat: \(errnoText())") }
        guard st.st_mode & S_IFMT == S_IFREG else { throw problem("not a regular file") }
        let mode = st.st_mode & 0o7777
        guard mode & 0o077 == 0 else {
            throw problem("readable or writable by group or other (mode \(String(mode, radix: 8))); run chmod 600 \(path)")
        }
        var data: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = Glibc.read(fd, &chunk, chunk.count)
            if n < 0, errno == EINTR { continue }
            guard n >= 0 else { throw problem("cannot read: \(errnoText())") }
            if n == 0 { break }
            data += chunk[0..<n]
            guard data.count <= maxBytes else { throw problem("larger than 64 KiB; is this the key?") }
        }
        guard let key = HelperKey(fileContents: data) else {
            let n = data.last == UInt8(ascii: "\n") ? data.count - 1 : data.count
            throw problem("too short (\(n) bytes); a key needs at least \(HelperKey.minimumLength) bytes")
        }
        return key
    }
}
