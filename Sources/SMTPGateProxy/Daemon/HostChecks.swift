#if canImport(Glibc)
import Glibc
#endif
import SMTPGateCore

/// What a valid file still cannot run with on this machine: `run` refuses to start with any of them, and
/// `check-config` reports them the same way, so that a file it passes starts.
public enum HostChecks {
    public static func problems(_ file: ConfigFile) -> [String] {
        var out: [String] = []
        let g = file.global
        if let user = g.setUser, getpwnam(user) == nil { out.append("set_user: no user named '\(LogEscape.escape(user))'") }
        if let group = g.setGroup, getgrnam(group) == nil { out.append("set_group: no group named '\(LogEscape.escape(group))'") }
        return out + scriptProblems(file)
    }

    /// What a reload checks too (the user and group only take effect at a start): checked as the running
    /// daemon sees them, after set_user and chroot_path, as the script would be run.
    public static func scriptProblems(_ file: ConfigFile) -> [String] {
        var scripts: [String] = []
        for c in file.configs { if let s = c.actionScript, !scripts.contains(s) { scripts.append(s) } }
        return scripts.compactMap { s in scriptProblem(s).map { "action_script \(LogEscape.escape(s)): \($0)" } }
    }

    /// The action script must be a regular file someone may execute: root passes `access(X_OK)` for any
    /// execute bit, and the script runs as `set_user`, so the bits are checked too.
    static func scriptProblem(_ path: String) -> String? {
        var st = stat()
        guard stat(path, &st) == 0 else { return "cannot use it: \(errnoText())" }
        guard st.st_mode & S_IFMT == S_IFREG else { return "is not a regular file" }
        guard st.st_mode & 0o111 != 0, access(path, X_OK) == 0 else { return "is not executable" }
        return nil
    }
}
