/// smtp-gated options that only tuned its own implementation: an smtp-gated file that sets them loads,
/// the value is checked as smtp-gated would read it, and `check-config` (and the start) say why it
/// changes nothing here. Written before the first section only, as smtp-gated had one process.
struct InertOption: Sendable {
    let name: String
    let check: @Sendable (String) throws(OptionValueError) -> Void
    let why: String

    static let all: [InertOption] = [
        InertOption(name: "buffer_size", check: { v throws(OptionValueError) in _ = try OptionValue.uint(v, min: 1) },
                    why: "each session's buffers grow with what it reads (swift-nio's allocator), up to the bounds in smtpgate(8)"),
        InertOption(name: "pid_hash_size", check: { v throws(OptionValueError) in _ = try OptionValue.uint(v, min: 1) },
                    why: "sessions are kept in tables that grow as needed"),
        InertOption(name: "host_hash_size", check: { v throws(OptionValueError) in _ = try OptionValue.uint(v, min: 1) },
                    why: "the per-host counts of max_per_host are kept in tables that grow as needed"),
        InertOption(name: "enfile_sleep", check: { v throws(OptionValueError) in _ = try OptionValue.uint(v) },
                    why: "out of descriptors, a connection is answered 421 at once and counted instead of pausing every accept (smtpgate(8), Out of descriptors)"),
        InertOption(name: "locale", check: { _ throws(OptionValueError) in },
                    why: "replies and log lines are in English"),
        InertOption(name: "lock_perm", check: { v throws(OptionValueError) in _ = try OptionValue.octalMode(v) },
                    why: "locks are kept in state_store, not as files (smtpgate locks import reads lock_path once)"),
        InertOption(name: "ratelimit_dst_expiration", check: { v throws(OptionValueError) in
                        guard Int(v).map({ $0 >= -1 }) == true else {
                            throw OptionValueError("expected -1 or a number of seconds, got '\(LogEscape.escape(v))'")
                        }
                    },
                    why: "ratelimit_destinations counts distinct destinations in its own windows"),
    ] + ["db_path", "db_name", "db_user", "db_pass", "db_condition", "on_virus", "on_virus_2", "on_virus_notify", "on_spam",
         "on_spam_2", "on_spam_notify", "on_host_flood", "on_host_flood_2", "on_host_flood_notify", "on_ident_flood",
         "on_ident_flood_2", "on_ident_flood_notify"].map { name in
        InertOption(name: name, check: { _ throws(OptionValueError) in },
                    why: "smtp-gated never implemented its PostgreSQL options; state_store postgresql://... keeps locks and counters there")
    } + replyTexts

    /// smtp-gated's reply texts for replies this proxy never sends: its own cause is in a reply with a text option.
    static let replyTexts: [InertOption] = [
        ("msg_virus_no_more", "a client that sent a virus is locked with lock_on virus and hears msg_virus_locked"),
        ("msg_unknown_virus", "the scanners here always name what they found, and the name is msg_virus_found's $virus"),
        ("msg_malformed_ip", "a destination that cannot be read is a lookup failure: msg_lookup_failed, with the cause as $reason"),
        ("msg_lookup_notfound", "every lookup failure is answered with msg_lookup_failed, its cause as $reason"),
        ("msg_lookup_timeout", "every lookup failure is answered with msg_lookup_failed, its cause as $reason"),
        ("msg_lookup_mismatch", "every lookup failure is answered with msg_lookup_failed, its cause as $reason"),
        ("msg_lookup_nomem", "every lookup failure is answered with msg_lookup_failed, its cause as $reason"),
        ("msg_lookup_unknown", "an unknown mode is a configuration error check-config reports"),
        ("msg_cannot_connect", "a failed connection to the destination is answered with msg_connect_failed, its cause as $reason"),
        ("msg_connect_timeout", "a failed connection to the destination is answered with msg_connect_failed, its cause as $reason"),
        ("msg_fixed_xclient_fail", "an XCLIENT the MTA refuses ends the connection to it, answered with msg_transaction_failed"),
        ("msg_spool_problem", "a message that cannot be spooled is not scanned: msg_scanner_failed, with the cause as $reason"),
        ("msg_spool_open_fail", "a message that cannot be spooled is not scanned: msg_scanner_failed, with the cause as $reason"),
        ("msg_hello", "the client always hears the destination MTA's own greeting"),
        ("msg_proto_error", "a protocol error is the destination MTA's to answer; the proxy's own are msg_unimpl_command and msg_pipeline_full"),
        ("msg_nomem", "a session's memory is bounded (smtpgate(8), Bounds) instead of failing"),
        ("msg_unknown_scanner", "an unknown scanner is a configuration error check-config reports"),
        ("msg_ratelimit_error", "the rate-limit counters are kept in memory (state_store keeps them over restarts), with no per-message error to answer"),
        ("msg_ratelimit_helo", "there is no HELO rate limit here"),
        ("msg_ratelimit_mailfrom", "there is no MAIL rate limit here; ratelimit_messages counts messages"),
    ].map { name, why in
        InertOption(name: name, check: { v throws(OptionValueError) in try ReplyTemplate.checkText(v) },
                    why: "this proxy never sends that reply: \(why)")
    }

    static let byName: [String: InertOption] = Dictionary(uniqueKeysWithValues: all.map { ($0.name, $0) })
}

/// One such option as the file set it.
public struct InertSetting: Sendable, Equatable {
    public var name: String
    public var value: String
}
