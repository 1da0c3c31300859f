#if canImport(Glibc)
import Glibc
#endif
import NIOConcurrencyHelpers

/// The 1-minute load average from /proc/loadavg, cached for a second: accepting must not read a file each time.
final class LoadAverage: @unchecked Sendable {
    private let cache = NIOLockedValueBox<(at: Int, value: Double?)>((0, nil))
    private let path: String

    init(path: String = "/proc/loadavg") {
        self.path = path
    }

    func current() -> Double? {
        let second = Int(time(nil))
        if let hit = cache.withLockedValue({ $0.at == second ? $0.value : nil }) { return hit }
        let value = read()
        cache.withLockedValue { $0 = (second, value) }
        return value
    }

    private func read() -> Double? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var buf = [UInt8](repeating: 0, count: 128)
        let n = buf.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
        guard n > 0 else { return nil }
        return Self.parse(buf[0..<n])
    }

    /// The first field of `0.42 0.30 0.25 1/123 4567`.
    static func parse(_ bytes: ArraySlice<UInt8>) -> Double? {
        let first = bytes.prefix { $0 != 0x20 }
        guard !first.isEmpty, first.count <= 16, let v = Double(String(decoding: first, as: UTF8.self)), v.isFinite, v >= 0
        else { return nil }
        return v
    }
}
