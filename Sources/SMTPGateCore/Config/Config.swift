/// The effective configuration: smtp-gated option names, smtp-gated defaults.
public struct Config: Sendable, Equatable {
    public enum Mode: String, Sendable, CaseIterable {
        case fixed
        case netfilter
        case tproxy
        case getsockname
        case remoteUDP = "remote-udp"
        case fixedXClient = "fixed+xclient"

        /// The modes whose destination is the configured MTA rather than a lookup.
        public var isFixed: Bool { self == .fixed || self == .fixedXClient }
    }

    public var proxyName = "*"
    /// smtp-gated's `msg_*` texts that replace the proxy's own reply texts.
    public var replyTexts: [ReplyText: ReplyTemplate] = [:]
    public var bindAddress = IPAddress.anyV4
    public var port = 9199
    public var outgoingAddr: IPAddress? = nil
    public var mode: Mode? = nil
    public var fixedServer: IPAddress? = nil
    public var fixedServerPort = 25
    public var pidfile: String? = nil
    public var connectQueue = 16
    public var pipelineSize = 128
    public var onTakeoverCmds = 10
    public var maxConnections = 64
    public var maxPerHost = 8
    /// Recipients relayed per transaction; Postfix's `smtpd_recipient_limit` and its default.
    public var maxRecipients = 1000
    public var timeoutConnect = 30.0
    public var timeoutIdle = 300.0
    public var timeoutDirect = 300.0
    public var timeoutSession = 20.0
    public var forbidStartTLS = false
    public var logHelo = true
    public var logMailFrom = AddressLogging.all
    public var logRcptTo = AddressLogging.all
    /// `email_length`: addresses in log lines are cut to this many bytes. smtp-gated's 64 cuts real
    /// addresses, so the default is RFC 5321's longest path, which cuts none.
    public var emailLength = Config.maxEmailLength
    public static let maxEmailLength = 256
    /// `spool_header`: the name of the origin header each spooled message starts with; nil for none.
    public var spoolHeader: String? = nil
    public var remotePort = 114
    public var remoteUDPRetries = 3
    public var remoteUDPSecret: UInt32 = 0
    public var remoteUDPKeyFile: String? = nil
    public var timeoutLookup = 10.0
    /// Largest message in bytes (un-stuffed), 0 for no limit.
    public var sizeLimit = 0
    public var proxyProtocol = false
    public var transparentSource = false
    public var setUser: String? = nil
    public var setGroup: String? = nil
    public var shutdownTimeout = 30.0

    // Spool and scanning
    public var spoolPath = "/var/spool/smtpgate"
    public var spoolLeaveOn: SpoolLeaveOn = .error
    /// Bytes of a message kept in memory before the spool moves to a file.
    public var spoolMemory = 256 * 1024
    public var antivirusType = AntivirusType.none
    public var antivirusPath = "/var/run/clamav/clamd.ctl"
    public var antispamType = AntispamType.none
    public var antispamPath = "/var/run/spamd/spamd_socket"
    public var scanMaxSize = 10_000_000
    public var spamMaxSize = 500_000
    public var spamThreshold = 7.0
    public var spamAction = SpamAction.reject
    public var timeoutScanner = 30.0
    public var timeoutSpam = 30.0
    public var ignoreErrors = false
    /// Scans running at once across the daemon; more wait their turn.
    public var maxScans = 32
    public var natHeader = "X-Nat-Received"
    public var natHeaderType = NatHeaderType.none
    public var abuse: String? = nil
    public var actionScript: String? = nil
    public var timeoutAction = 30.0
    /// Action scripts running at once; more wait in a bounded queue, beyond it they are dropped (and logged).
    public var maxActions = 4

    // Abuse control
    /// Causes that lock the client (`lock_on`); none by default, unlike smtp-gated, so an upgraded site
    /// that never set it does not start locking customers.
    public var lockOn: Set<LockCause> = []
    /// Seconds a lock lasts; 0 turns locking off, -1 locks until the lock is removed.
    public var lockDuration = 3600
    public var lockExempt: [CIDR] = []
    /// smtp-gated's lock directory: where `smtpgate locks import` takes locks over from by default.
    public var lockPath: String? = nil
    /// Routers that SNAT their customers: an address in here is never locked or rate-limited as a client.
    public var natSources: [CIDR] = []
    public var lockIPv6Prefix = 64
    public var ratelimitIPv6Prefix = 64
    /// The window of a rate limit given as a bare number (smtp-gated's `ratelimit_expiration`).
    public var ratelimitExpiration = 3600
    /// Accepted for smtp-gated configurations; SMTPGate keeps its counters in `state_store`.
    public var ratelimitPath: String? = nil
    public var ratelimitGeneration = 0
    /// The `ratelimit_*` limits; off kinds are absent. A bare number's window is `ratelimit_expiration`,
    /// wherever in the file that is set.
    public var rateLimits: [RateKind: RateLimitSpec] = [:]
    /// `ratelimit_override cidr:FILE`: the file's path, and what it says (read with the configuration).
    public var ratelimitOverride: String? = nil
    public var rateOverrides = RateOverrides()
    /// Tracked clients at most; past it the idlest are forgotten.
    public var ratelimitClients = 1_000_000
    public var maxPerIdent = 0
    /// 1-minute load average above which connections are refused; 0 (the default) is off.
    public var maxLoad = 0.0
    public var stateStore = "sqlite:/var/lib/smtpgate/state.db"
    /// `state_store` given in the file: locks by hand work even with no `lock_on` and no rate limit.
    public var stateStoreSet = false
    public var controlPath = "/run/smtpgate/control.sock"
    /// The HTTP listener for `/metrics`, the status page and `/healthz`; off unless set.
    public var adminListen: AdminEndpoint?
    /// Who may use it: the status page shows customers' addresses, so loopback only unless widened.
    public var adminAllow: [CIDR] = [try! CIDR(parsing: "127.0.0.0/8"), try! CIDR(parsing: "::1/128")]
    /// The syslog facility of `run --syslog`.
    public var logFacility = SyslogFormat.Facility.mail
    /// Lines less severe than this syslog level (0 emerg ... 7 debug) are not written, wherever they go.
    public var logLevel = 6
    /// Mode of the spool files; smtp-gated's 0660 would let the group read every customer's mail.
    public var spoolPerm = 0o600
    /// 1-minute load average above which spamd is not asked (the message passes unscanned for spam); 0 is off.
    public var spamMaxLoad = 0.0
    /// `priority`: the nice value set at start (-20 to 19); nil leaves it as inherited.
    public var priority: Int? = nil
    /// `limit_core_size`, `limit_virt_size`, `limit_data_size`, `limit_fsize` in bytes; nil (-1) leaves the
    /// inherited limit. smtp-gated's 64M/100M defaults would starve the event loops or stop a growing log.
    public var limits: [ResourceLimit: Int] = [:]
    /// smtp-gated options set in the file that have no effect here (`InertOption`), with their values, in
    /// file order: check-config shows them, so its output reads back as the same configuration.
    public var inertOptions: [InertSetting] = []
    /// Written on SIGUSR1 (smtp-gated's state dump).
    public var statefile = "/run/smtpgate/state"
    public var statefileType: StatefileType = [.human, .slots]
    public var statefilePerm = 0o660
    /// DNS blocklists asked for the real client at connect; empty is off.
    public var dnsbl: [DNSBLSite] = []
    public var dnsblThreshold = 1
    /// Where lookups go; empty reads /etc/resolv.conf.
    public var dnsServers: [DNSServer] = []
    public var timeoutDNS = 5.0
    /// A client that sends anything before the MTA's greeting reaches it is refused.
    public var earlyTalker = false
    /// How long the upstream connect waits (and the client with it) so that an early talker shows itself.
    public var earlyTalkerWait = 0.0
    public var authRequire = AuthRequirement.no
    public var authSkip: Set<AuthSkip> = []
    /// `regex_reject_*` and `regex_enforce_*`, in the option table's order.
    public var regexRules: [RegexRule] = []
    /// Postfix-style restriction lists; a stage without a list has none (permit).
    public var restrictions: [RestrictionStage: [Restriction]] = [:]
    /// `permit_mynetworks`: Postfix's default `mynetworks_style host` on a proxy is the loopback networks.
    public var mynetworks: [CIDR] = [try! CIDR(parsing: "127.0.0.0/8"), try! CIDR(parsing: "::1/128")]
    /// `policy_mode warn`: every restriction's refusal is a `reject_warning` line, and nothing is refused.
    public var policyMode = RestrictionEvaluation.Mode.enforce
    /// Where customers' connections may go (an ISP's interception): permitted, refused or redirected.
    public var destinationRestrictions: [DestinationRestriction] = []
    /// smtp-gated's SPF check at MAIL.
    public var spf = SPFMode.off
    public var spfFixedIP: String?
    /// Log the result and refuse nothing.
    public var spfLogOnly = false
    /// Add a Received-SPF header (RFC 7208 §9.1) to each message checked.
    public var spfReceivedHeader = false

    /// rinetd's allow/deny rules of a `[forward]`: the global ones (written before any section) and its own.
    public var forwardRules = ForwardRules()
    /// Postfix's `syslog_name`: a listener's log lines say this instead of `smtpgate` (e.g. `smtpgate-out`).
    public var syslogName: String?

    public init() {}

    /// Whether anything asks DNS: the resolver is started for it.
    public var usesDNS: Bool { !dnsbl.isEmpty || spf != .off || restrictions.values.contains { $0.contains(where: \.usesDNS) } }

    /// Whether anything needs the per-client state (locks or rate limits).
    public var abuseControl: Bool { stateStoreSet || (!lockOn.isEmpty && lockDuration != 0) || !rateLimits.isEmpty }

    /// The server of `state_store postgresql://…` (checked when the option was read).
    public var stateStorePostgres: PostgresURL? {
        stateStore.hasPrefix("postgresql:") ? try? PostgresURL.parse(stateStore) : nil
    }

    /// The SQLite file of `state_store sqlite:PATH`.
    public var stateStorePath: String? {
        stateStore.hasPrefix("sqlite:") ? String(stateStore.dropFirst("sqlite:".count)) : nil
    }

    public enum AntivirusType: String, Sendable, CaseIterable { case none, clamd }
    public enum AntispamType: String, Sendable, CaseIterable { case none, spamassassin }
    public enum SpamAction: String, Sendable, CaseIterable { case reject, deliver }
    public enum NatHeaderType: String, Sendable, CaseIterable {
        case none, generic
        case ipOnly = "ip-only"
    }

    /// smtp-gated's `spool_leave_on`: when a spooled message is kept instead of removed.
    /// What the state file holds, in this order: the summary and listeners, `key=value` lines, the session table.
    public struct StatefileType: OptionSet, Sendable, Equatable {
        public let rawValue: Int
        public init(rawValue: Int) { self.rawValue = rawValue }
        public static let human = StatefileType(rawValue: 1)
        public static let flat = StatefileType(rawValue: 2)
        public static let slots = StatefileType(rawValue: 4)
    }

    public enum ResourceLimit: String, Sendable, CaseIterable {
        case coreSize = "limit_core_size"
        case virtSize = "limit_virt_size"
        case dataSize = "limit_data_size"
        case fsize = "limit_fsize"
    }

    public struct SpoolLeaveOn: OptionSet, Sendable, Equatable {
        public let rawValue: Int
        public init(rawValue: Int) { self.rawValue = rawValue }
        public static let error = SpoolLeaveOn(rawValue: 1)
        public static let spam = SpoolLeaveOn(rawValue: 2)
        public static let virus = SpoolLeaveOn(rawValue: 4)
        public static let always = SpoolLeaveOn(rawValue: 8)
    }

    /// Whether any scanner is configured (the final dot is then held for a verdict).
    public var scans: Bool { antivirusType != .none || antispamType != .none }
    /// Scanning with STARTTLS relayed: every message after a STARTTLS goes by unscanned.
    public var scansWithSTARTTLSRelayed: Bool { scans && !forbidStartTLS }

    /// smtp-gated's `log_mail_from` / `log_rcpt_to` bit set: which addresses appear in the log.
    public struct AddressLogging: OptionSet, Sendable, Equatable {
        public let rawValue: Int
        public init(rawValue: Int) { self.rawValue = rawValue }
        public static let accepted = AddressLogging(rawValue: 1)
        public static let rejected = AddressLogging(rawValue: 2)
        public static let all: AddressLogging = [.accepted, .rejected]

        public func logs(code: Int?) -> Bool {
            guard let code else { return contains(.accepted) }
            return (200..<300).contains(code) ? contains(.accepted) : contains(.rejected)
        }
    }

    /// `proxy_name *` means the host name, which the caller supplies.
    public func resolvedProxyName(hostName: String) -> String {
        proxyName == "*" ? hostName : proxyName
    }
}
