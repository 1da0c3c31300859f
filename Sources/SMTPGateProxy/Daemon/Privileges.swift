#if canImport(Glibc)
import Glibc
#endif

/// Process-level set-up a daemon does once: file limits, pidfile, dropping root after binding.
enum Privileges {
    /// Two descriptors per session: lift the soft limit to the hard one so `max_connections` is reachable.
    static func raiseFileLimit() {
        var lim = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &lim) == 0, lim.rlim_cur < lim.rlim_max else { return }
        lim.rlim_cur = lim.rlim_max
        _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &lim)
    }

    /// `priority` and the `limit_*` options, while still root (a negative nice value needs it).
    static func apply(priority: Int?, limits: [Config.ResourceLimit: Int]) throws {
        if let priority {
            guard setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, Int32(priority)) == 0 else {
                throw DaemonError("priority \(priority): setpriority failed: \(errnoText())")
            }
        }
        for (limit, bytes) in limits.sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
            let resource: Int32
            switch limit {
            case .coreSize: resource = Int32(RLIMIT_CORE.rawValue)
            case .virtSize: resource = Int32(RLIMIT_AS.rawValue)
            case .dataSize: resource = Int32(RLIMIT_DATA.rawValue)
            case .fsize: resource = Int32(RLIMIT_FSIZE.rawValue)
            }
            var lim = rlimit()
            _ = getrlimit(resource, &lim)
            lim.rlim_cur = rlim_t(bytes)
            // Raising past the hard limit needs root; lowering it is allowed to everyone.
            if lim.rlim_max != rlim_t.max, lim.rlim_max < lim.rlim_cur { lim.rlim_max = lim.rlim_cur }
            guard setrlimit(resource, &lim) == 0 else {
                throw DaemonError("\(limit.rawValue) \(bytes): setrlimit failed: \(errnoText())")
            }
        }
    }

    static func writePidfile(_ path: String) throws {
        let text = "\(getpid())\n"
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw DaemonError("cannot write pidfile \(path): \(errnoText())") }
        defer { close(fd) }
        _ = text.withCString { write(fd, $0, strlen($0)) }
    }

    static func removePidfile(_ path: String) {
        unlink(path)
    }

    static func drop(user: String?, group: String?) throws {
        guard user != nil || group != nil else { return }
        var gid: gid_t?
        if let group {
            guard let gr = getgrnam(group) else { throw DaemonError("set_group: no group named '\(group)'") }
            gid = gr.pointee.gr_gid
        }
        if let user {
            guard let pw = getpwnam(user) else { throw DaemonError("set_user: no user named '\(user)'") }
            let uid = pw.pointee.pw_uid
            let primary = gid ?? pw.pointee.pw_gid
            guard initgroups(user, primary) == 0 else { throw DaemonError("set_user: initgroups failed: \(errnoText())") }
            guard setgid(primary) == 0 else { throw DaemonError("set_group: setgid failed: \(errnoText())") }
            guard setuid(uid) == 0 else { throw DaemonError("set_user: setuid failed: \(errnoText())") }
        } else if let gid {
            var g = gid
            guard setgroups(1, &g) == 0, setgid(gid) == 0 else {
                throw DaemonError("set_group: setgid failed: \(errnoText())")
            }
        }
    }

    /// The user the daemon runs as, for the start line.
    static func userName() -> String {
        guard let pw = getpwuid(geteuid()), let name = pw.pointee.pw_name else { return "\(geteuid())" }
        return LogEscape.escape(String(cString: name))
    }

    static func hostName() -> String {
        var buf = [CChar](repeating: 0, count: 256)
        guard gethostname(&buf, buf.count - 1) == 0 else { return "smtpgate" }
        let name = String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return name.isEmpty ? "smtpgate" : LogEscape.escape(name)
    }
}

import SMTPGateCore
import SMTPGateRuntime
