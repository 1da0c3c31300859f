#if canImport(Glibc)
import Glibc
#endif
import SMTPGateCore

/// Reads an smtp-gated `lock_path` directory: one file per locked client, named `IP` or `IP-IDENT`, locked
/// until its mtime plus `lock_duration`, its content the cause. A file owned by another user than the
/// daemon's was smtp-gated's way to exempt a client: it becomes a `lock_exempt` suggestion, not a lock.
public struct LockImport {
    public struct Plan: Sendable {
        public var locks: [(key: ClientKey, seconds: Int?, reason: String)] = []
        public var exempt: [String] = []
        public var expired = 0
        /// Names that are no address (smtp-gated never wrote them): left alone and listed.
        public var unreadable: [String] = []
    }

    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// Bounds on a directory that may hold years of files.
    static let maxFiles = 1_000_000
    static let maxContent = 200

    public static func plan(directory: String, config: Config, now: Double) throws(Failure) -> Plan {
        guard config.lockDuration != 0 else {
            throw Failure(description: "lock_duration is 0 (locks are off): set it before importing locks")
        }
        var dirStat = stat()
        guard stat(directory, &dirStat) == 0, dirStat.st_mode & S_IFMT == S_IFDIR else {
            throw Failure(description: "\(directory) is not a directory")
        }
        let owner = config.setUser.flatMap { getpwnam($0)?.pointee.pw_uid } ?? dirStat.st_uid
        guard let dir = opendir(directory) else { throw Failure(description: "cannot read \(directory): \(errnoText())") }
        defer { closedir(dir) }
        var plan = Plan()
        var seen = 0
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name == "." || name == ".." { continue }
            seen += 1
            guard seen <= maxFiles else { throw Failure(description: "more than \(maxFiles) files in \(directory)") }
            let path = directory + "/" + name
            var st = stat()
            guard lstat(path, &st) == 0, st.st_mode & S_IFMT == S_IFREG else { continue }
            guard let key = key(name, ipv6Prefix: config.lockIPv6Prefix) else {
                plan.unreadable.append(LogEscape.escape(name))
                continue
            }
            if st.st_uid != owner {
                plan.exempt.append(key.withoutIdent.description)
                continue
            }
            var seconds: Int?
            if config.lockDuration > 0 {
                let left = Double(st.st_mtim.tv_sec) + Double(config.lockDuration) - now
                guard left >= 1 else {
                    plan.expired += 1
                    continue
                }
                // A file dated in the future (a clock step) is held to the longest lock a request may ask.
                seconds = Int(min(left, Double(366 * 86400)))
            }
            plan.locks.append((key, seconds, "imported from smtp-gated: " + content(path)))
        }
        plan.locks.sort { $0.key < $1.key }
        return plan
    }

    /// `10.0.0.5`, `2001:db8::1`, or `10.0.0.5-bob` (smtp-gated's IP-IDENT: addresses hold no `-`).
    static func key(_ name: String, ipv6Prefix: Int) -> ClientKey? {
        if let dash = name.firstIndex(of: "-") {
            let ip = name[..<dash], ident = name[name.index(after: dash)...]
            return try? ClientKey(parsing: "\(ident)@\(ip)", ipv6Prefix: ipv6Prefix)
        }
        guard let bytes = AddressBytes.parse(name) else { return nil }
        return ClientKey(address: bytes, ipv6Prefix: ipv6Prefix)
    }

    static func content(_ path: String) -> String {
        // Non-blocking: an entry swapped for a FIFO after the type check must not hang the import.
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK)
        guard fd >= 0 else { return "?" }
        defer { close(fd) }
        var buf = [UInt8](repeating: 0, count: maxContent)
        let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        guard n > 0 else { return "no cause given" }
        let firstLine = buf[0..<n].prefix { $0 != 0x0a && $0 != 0x0d }
        return firstLine.isEmpty ? "no cause given" : ControlField.clean(LogEscape.escape(firstLine))
    }
}
