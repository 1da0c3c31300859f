/// Where an option may be written, and what a reload (SIGHUP) does with a changed value: the table behind
/// section checks, `check-config`'s listing and the man page's.
public enum OptionScope: String, Sendable, CaseIterable {
    /// Before the first section only: the daemon has one of it (its user, its state store, its resolver).
    case daemon
    /// Global or in a `[listener]` section: SMTP sessions only.
    case listener
    /// Global, `[listener]` or `[forward]`: the listening end, the destination, connection limits and timeouts.
    case connection
    /// Global or `[forward]`: rinetd's allow/deny rules (global ones are rinetd's global rules).
    case forward

    public var inListener: Bool { self == .listener || self == .connection }
    public var inForward: Bool { self == .connection || self == .forward }

    /// What a reload does with a changed value.
    public enum Reload: String, Sendable {
        /// New sessions get it; open sessions keep what they started with.
        case applies
        /// The listener is replaced: new sockets, the old one's sessions finish as on SIGTERM.
        case rebinds
        /// Kept until the daemon restarts (said in the reload log line).
        case restart
    }

    static let daemonOptions: Set<String> = [
        "pidfile", "set_user", "set_group", "max_scans", "max_actions", "shutdown_timeout", "spool_path",
        "state_store", "control_path", "log_facility", "log_level", "statefile", "priority", "limit_core_size", "limit_virt_size",
        "limit_data_size", "limit_fsize", "chroot_path", "dspam_storage", "statefile_type", "statefile_perm", "dns_server", "timeout_dns", "remote_udp_key_file",
        "lock_exempt", "lock_path", "nat_sources", "lock_ipv6_prefix",
        "ratelimit_ipv6_prefix", "ratelimit_expiration", "ratelimit_path", "ratelimit_generation",
        "ratelimit_clients", "ratelimit_override", "admin_listen", "admin_allow",
    ]

    static let connectionOptions: Set<String> = [
        "bind_address", "port", "mode", "fixed_server", "fixed_server_port", "outgoing_addr",
        "connect_queue", "max_connections", "max_per_host", "timeout_connect", "timeout_idle", "remote_port",
        "remote_udp_retries", "remote_udp_secret", "timeout_lookup", "proxy_protocol", "transparent_source",
        "syslog_name",
    ]

    static let forwardOptions: Set<String> = ["allow", "deny"]

    static let rebinding: Set<String> = ["bind_address", "port", "mode", "connect_queue"]

    static let restartOnly: Set<String> = [
        "pidfile", "set_user", "set_group", "max_scans", "state_store", "control_path", "log_facility", "log_level",
        "priority", "limit_core_size", "limit_virt_size", "limit_data_size", "limit_fsize", "admin_listen",
    ]

    public static func of(_ name: String) -> OptionScope {
        if daemonOptions.contains(name) { return .daemon }
        if connectionOptions.contains(name) { return .connection }
        if forwardOptions.contains(name) { return .forward }
        return .listener
    }

    public static func reload(_ name: String) -> Reload {
        if rebinding.contains(name) { return .rebinds }
        if restartOnly.contains(name) { return .restart }
        return .applies
    }
}
