/// Every metric the daemon and the helper export, with its type, labels and help text: the table behind
/// `/metrics`, the man page's list and the naming tests. A label's values are always from a closed set or
/// from the configuration (listener names), never from a client, so the series count stays bounded.
public enum MetricFamily: String, Sendable, CaseIterable {
    case buildInfo = "smtpgate_build_info"
    case startTime = "smtpgate_start_time_seconds"
    case sessionsOpen = "smtpgate_sessions_open"
    case sessions = "smtpgate_sessions_total"
    case refusals = "smtpgate_refusals_total"
    case commandRefusals = "smtpgate_command_refusals_total"
    case policyWarnings = "smtpgate_policy_warnings_total"
    case transactions = "smtpgate_transactions_total"
    case recipients = "smtpgate_recipients_total"
    case bytes = "smtpgate_bytes_total"
    case limitHits = "smtpgate_limit_hits_total"
    case rateLimitHits = "smtpgate_ratelimit_hits_total"
    case locksActive = "smtpgate_locks_active"
    case locksCreated = "smtpgate_locks_created_total"
    case scans = "smtpgate_scans_total"
    case scanDuration = "smtpgate_scan_duration_seconds"
    case logLinesDropped = "smtpgate_log_lines_dropped_total"
    case descriptorExhaustion = "smtpgate_descriptor_exhaustion_total"
    case forwards = "smtpgate_forwards_total"
    case remoteUDPLookups = "smtpgate_remote_udp_lookups_total"
    case remoteUDPLookupDuration = "smtpgate_remote_udp_lookup_duration_seconds"
    case dnsLookups = "smtpgate_dns_lookups_total"
    case dnsLookupDuration = "smtpgate_dns_lookup_duration_seconds"
    case policyServiceQueries = "smtpgate_policy_service_queries_total"
    case policyServiceDuration = "smtpgate_policy_service_duration_seconds"
    case actionRuns = "smtpgate_action_runs_total"

    case helperQueries = "smtpgate_helper_queries_total"
    case helperDrops = "smtpgate_helper_dropped_total"
    case helperLookupDuration = "smtpgate_helper_lookup_duration_seconds"


    public enum Kind: String, Sendable { case counter, gauge, histogram }

    /// Which program exports it: `smtpgate` or `smtpgate-helper` (`--admin-listen`).
    public enum Exporter: Sendable { case proxy, helper }

    public var name: String { rawValue }

    public var exporter: Exporter {
        switch self {
        case .helperQueries, .helperDrops, .helperLookupDuration: return .helper
        default: return .proxy
        }
    }

    public var kind: Kind {
        switch self {
        case .buildInfo, .startTime, .sessionsOpen, .locksActive: return .gauge
        case .scanDuration, .helperLookupDuration, .remoteUDPLookupDuration, .dnsLookupDuration, .policyServiceDuration:
            return .histogram
        default: return .counter
        }
    }

    public var labels: [String] {
        switch self {
        case .buildInfo: return ["version"]
        case .startTime, .locksActive, .logLinesDropped, .helperLookupDuration, .remoteUDPLookupDuration: return []
        case .helperQueries, .remoteUDPLookups, .actionRuns: return ["result"]
        case .helperDrops: return ["reason"]
        case .sessionsOpen, .policyWarnings, .descriptorExhaustion: return ["listener"]
        case .sessions: return ["listener", "closed_by"]
        case .refusals: return ["listener", "cause"]
        case .commandRefusals: return ["listener", "command"]
        case .transactions, .recipients: return ["listener", "reply_class"]
        case .bytes: return ["listener", "direction"]
        case .limitHits: return ["listener", "limit"]
        case .rateLimitHits: return ["listener", "kind"]
        case .locksCreated: return ["cause"]
        case .scans: return ["scanner", "result"]
        case .scanDuration: return ["scanner"]
        case .forwards: return ["listener", "result"]
        case .dnsLookups: return ["type", "result"]
        case .dnsLookupDuration: return ["type"]
        case .policyServiceQueries: return ["service", "result"]
        case .policyServiceDuration: return ["service"]
        }
    }

    public var help: String {
        switch self {
        case .buildInfo: return "Always 1; the version label names the running smtpgate."
        case .startTime: return "Unix time at which the daemon started."
        case .sessionsOpen: return "Connections open now: SMTP sessions, and forwarded connections on forward listeners."
        case .sessions: return "SMTP sessions that ended, by who closed them (proxy: refused after accept, or ended by the proxy)."
        case .refusals: return "Connections refused before their dialogue began, by cause."
        case .commandRefusals: return "Commands the proxy's own policy refused (the session went on), by command."
        case .policyWarnings: return "Refusals policy_mode warn or warn_if_reject turned into log lines."
        case .transactions: return "Mail transactions, by the class of the MTA's reply to the end of DATA (none: ended without one)."
        case .recipients: return "Recipients, by the class of the MTA's reply to RCPT."
        case .bytes: return "Bytes relayed: from_client (client to MTA or forward destination) and to_client."
        case .limitHits: return "Per-session limits reached (max_recipients), by limit."
        case .rateLimitHits: return "Commands or connections a rate limit refused, by limit kind."
        case .locksActive: return "Clients locked now."
        case .locksCreated: return "Locks made, by cause: what sessions did (lock_on) or admin (smtpgate locks add)."
        case .scans: return "Scanner answers, by scanner and result."
        case .scanDuration: return "Time from a scan request to the scanner's answer or failure."
        case .logLinesDropped: return "Log lines dropped because the log output could not keep up."
        case .descriptorExhaustion: return "Connections answered 421 because the process ran out of file descriptors."
        case .forwards: return "Connections of forward listeners that ended, by rinetd's result name."
        case .remoteUDPLookups: return "Questions to smtpgate-helper (mode remote-udp), by result."
        case .remoteUDPLookupDuration: return "Time from the first question to smtpgate-helper to its answer or the last timeout."
        case .dnsLookups: return "DNS lookups (DNSBL, DNSWL, RHSBL, reverse and HELO checks), by record type and result."
        case .dnsLookupDuration: return "Time a DNS lookup the resolver sent took to answer or fail."
        case .policyServiceQueries: return "Policy-service (SMTPD policy delegation) queries, by service and result."
        case .policyServiceDuration: return "Time a policy-service query took, retries included."
        case .actionRuns: return "action_script runs, by how they ended."
        case .helperQueries: return "Queries the helper looked up in conntrack, by result."
        case .helperDrops: return "Queries the helper dropped unanswered, by reason."
        case .helperLookupDuration: return "Time the helper spent on one conntrack lookup."
        }
    }

    /// Histogram buckets in seconds: for scans from a small message on loopback to the scanners' longest
    /// timeouts; for conntrack lookups from tens of microseconds to the proxy's lookup timeout; for
    /// questions over the network from a LAN round trip to the resolver's and policy services' timeouts.
    public var buckets: [Double] {
        switch self {
        case .helperLookupDuration: return [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1]
        case .remoteUDPLookupDuration, .dnsLookupDuration, .policyServiceDuration:
            return [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
        default: return [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]
        }
    }
}

/// The `reply_class` label of an SMTP reply code.
public enum ReplyClass {
    public static func of(_ code: Int?) -> String {
        guard let code, (200...599).contains(code) else { return "none" }
        return "\(code / 100)xx"
    }
}
