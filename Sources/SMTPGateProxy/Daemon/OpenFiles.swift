#if canImport(Glibc)
import Glibc
#endif

/// The process's open-files limit and what it has open, for the descriptor budget.
enum OpenFiles {
    /// The soft RLIMIT_NOFILE; nil when unlimited (RLIM_INFINITY, all ones) or unreadable.
    static func limit() -> Int? {
        var lim = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &lim) == 0, lim.rlim_cur != rlim_t.max else { return nil }
        return Int(clamping: lim.rlim_cur)
    }

    /// Descriptors open now, from /proc/self/fd, not counting the one that reads it; nil when unreadable.
    static func inUse() -> Int? {
        guard let dir = opendir("/proc/self/fd") else { return nil }
        defer { closedir(dir) }
        var count = 0
        while let entry = readdir(dir) {
            if entry.pointee.d_name.0 != 0x2e { count += 1 }  // not "." or ".."
        }
        return count - 1
    }
}
