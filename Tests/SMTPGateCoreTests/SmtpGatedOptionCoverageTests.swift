import Testing
@testable import SMTPGateCore

/// Every option smtp-gated 1.4 reads (its options.h, the list smtp-gated.conf(5) documents) is known here:
/// it either works or is accepted and named by check-config as having no effect.
@Suite("smtp-gated option coverage")
struct SmtpGatedOptionCoverageTests {
    static let smtpGated: [String] = [
        "proxy_name", "bind_address", "port", "outgoing_addr", "pidfile", "statefile", "statefile_perm",
        "statefile_type", "mode", "fixed_server", "fixed_server_port", "remote_port", "remote_udp_retries",
        "remote_udp_secret", "chroot_path", "set_user", "set_group", "priority", "connect_queue", "buffer_size",
        "pipeline_size", "pid_hash_size", "host_hash_size", "enfile_sleep", "on_takeover_cmds", "limit_core_size",
        "limit_virt_size", "limit_data_size", "limit_fsize", "lock_on", "lock_duration", "lock_path", "lock_perm",
        "forbid_starttls", "action_script", "spool_path", "spool_perm", "spool_leave_on", "timeout_direct",
        "timeout_lookup", "timeout_scanner", "timeout_spam", "timeout_session", "timeout_idle", "timeout_connect",
        "max_connections", "max_per_host", "max_per_ident", "max_load", "size_limit", "scan_max_size",
        "spam_max_size", "spam_threshold", "spam_max_load", "ignore_errors", "log_helo", "log_mail_from",
        "log_rcpt_to", "email_length", "auth_require", "auth_skip", "log_level", "log_facility", "nat_header",
        "nat_header_type", "spool_header", "abuse", "antivirus_type", "antivirus_path", "antispam_type",
        "antispam_path", "dspam_storage", "earlytalker", "regex_enforce_helo", "regex_reject_helo",
        "regex_enforce_mail_from", "regex_reject_mail_from", "regex_enforce_rcpt_to", "regex_reject_rcpt_to",
        "dnsbl", "spf", "spf_log_only", "spf_fixed_ip", "ratelimit_path", "ratelimit_dst_expiration",
        "ratelimit_expiration", "ratelimit_generation", "ratelimit_connections", "ratelimit_messages",
        "ratelimit_recipients", "ratelimit_bytes", "ratelimit_mailfrom_rejects", "ratelimit_rcptto_rejects",
        "ratelimit_auth_rejects", "db_path", "db_name", "db_user", "db_pass", "db_condition", "on_virus",
        "on_virus_2", "on_virus_notify", "on_spam", "on_spam_2", "on_spam_notify", "on_host_flood",
        "on_host_flood_2", "on_host_flood_notify", "on_ident_flood", "on_ident_flood_2", "on_ident_flood_notify",
        "locale", "msg_virus_found", "msg_virus_no_more", "msg_virus_locked", "msg_spam_found", "msg_unknown_virus",
        "msg_scanner_failed", "msg_malformed_ip", "msg_cannot_connect", "msg_spool_problem", "msg_spool_open_fail",
        "msg_pipeline_full", "msg_lookup_failed", "msg_lookup_notfound", "msg_lookup_timeout",
        "msg_lookup_mismatch", "msg_lookup_nomem", "msg_lookup_unknown", "msg_connect_timeout",
        "msg_connect_failed", "msg_session_timeout", "msg_sign_off", "msg_hello", "msg_proto_error",
        "msg_transaction_failed", "msg_unimpl_command", "msg_temp_unavail", "msg_max_reached", "msg_max_per_host",
        "msg_max_per_ident", "msg_system_load", "msg_nomem", "msg_unknown_scanner", "msg_auth_required",
        "msg_loop_avoidance", "msg_size_limit", "msg_fixed_xclient_fail", "msg_dnsdb_reject", "msg_spf_reject",
        "msg_rate_reject", "msg_ratelimit_error", "msg_ratelimit_messages", "msg_ratelimit_rcptto",
        "msg_ratelimit_rcptto_rejects", "msg_ratelimit_helo", "msg_ratelimit_mailfrom",
        "msg_ratelimit_mailfrom_rejects", "msg_ratelimit_dst", "msg_earlytalker", "msg_regex_helo",
        "msg_regex_mail_from", "msg_regex_rcpt_to",
    ]

    @Test func everySmtpGatedOptionIsKnown() {
        #expect(Self.smtpGated.count == 163)
        let unknown = Self.smtpGated.filter { Option.byName[$0] == nil && InertOption.byName[$0] == nil }
        #expect(unknown.isEmpty, "unknown to check-config: \(unknown)")
    }
}
