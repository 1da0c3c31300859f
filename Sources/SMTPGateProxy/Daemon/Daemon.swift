#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import SMTPGateCore
import SMTPGateRuntime

/// The running proxy: owns the event loops, the listener, the live configuration and the signals.
public final class Daemon: @unchecked Sendable {
    public static let version = "0.1.0"

    private let configPath: String
    /// The configuration the daemon started with: its start-up-only options stay in force until a restart.
    private let startup: Config
    private let config: NIOLockedValueBox<Config>
    private let log: Logger
    private let sink: LogSink
    private let events: EventLog
    private let registry = SessionRegistry()
    private let group = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
    private var signalSources: [DispatchSourceSignal] = []
    private let signalQueue = DispatchQueue(label: "smtpgate.signals")
    private let stopped = DispatchSemaphore(value: 0)
    private let stopping = NIOLockedValueBox(false)
    private var listener: ProxyListener?
    /// The v2 key for remote-udp queries, read with the configuration (start-up and reload).
    private let helperKey: NIOLockedValueBox<HelperKey?>
    private let maps: NIOLockedValueBox<AccessMapSet>
    private let policyServices = PolicyServiceClients()
    private let helperClients = NIOLockedValueBox<[ObjectIdentifier: HelperClient]>([:])
    /// Spool files and action scripts are handled here, off the event loops.
    private let pool = NIOThreadPool(numberOfThreads: 2)
    private let scanLimiter: ScanLimiter
    /// The action runner for the current script settings (a reload that changes them makes a new one).
    private let actions = NIOLockedValueBox<(key: String, runner: ActionRunner)?>(nil)
    /// Descriptors open once listening, before any session: the base of the descriptor budget.
    private var descriptorsAtStart: Int?
    /// Locks and rate limits with their state store, when configured.
    private var abuse: AbuseService?
    private var control: Channel?
    /// The DNS resolver and the `dnsbl` check of the running configuration, when it asks DNS (blocklists,
    /// restrictions that look names up).
    private let dns = NIOLockedValueBox<(resolver: Resolver, check: DNSBLCheck)?>(nil)

    public init(configPath: String, loaded: LoadedConfig, sink: LogSink) {
        let config = loaded.config
        self.helperKey = NIOLockedValueBox(loaded.helperKey)
        self.maps = NIOLockedValueBox(loaded.maps)
        self.configPath = configPath
        self.startup = config
        self.config = NIOLockedValueBox(config)
        self.sink = sink
        var logger = Logger(label: "smtpgate") { _ in SinkLogHandler(sink: sink) }
        logger.logLevel = .info
        self.log = logger
        self.events = EventLog(logger: logger)
        self.scanLimiter = ScanLimiter(limit: config.maxScans)
    }

    /// Runs until SIGTERM/SIGINT and the drain that follows. Throws on start-up failure.
    public func run() throws {
        let initial = config.withLockedValue { $0 }
        Privileges.raiseFileLimit()
        let hostName = Privileges.hostName()
        do {
            try prepareDNS(initial)
            abuse = try AbuseService.start(initial, source: "\(hostName):\(initial.controlPath)", events: events,
                                           queue: signalQueue)
        } catch {
            try? group.syncShutdownGracefully()
            throw error
        }
        if let abuse {
            do {
                control = try ControlServer.bind(
                    path: initial.controlPath, group: group,
                    service: ControlService(abuse: abuse.control, events: events, ipv6Prefix: initial.lockIPv6Prefix))
            } catch {
                abuse.stop()
                try? group.syncShutdownGracefully()
                throw DaemonError("control_path \(initial.controlPath): cannot listen: \(error)")
            }
        }
        let listener = ProxyListener(name: "main", config: { [config] in config.withLockedValue { $0 } },
                                     hostName: Privileges.hostName(), events: events, registry: registry,
                                     makeFinder: { [unowned self] cfg, loop in finder(for: cfg, on: loop) },
                                     makeExtras: { [unowned self] cfg in extras(for: cfg) }, abuse: abuse?.control)
        self.listener = listener
        let servers: [Channel]
        do {
            servers = try listener.bind(group: group, config: initial)
        } catch {
            try? group.syncShutdownGracefully()
            throw DaemonError("cannot listen on \(initial.bindAddress.withPort(initial.port)): \(error)")
        }
        if let pidfile = initial.pidfile { try Privileges.writePidfile(pidfile) }
        do {
            try Self.prepareSpool(initial)
            try Privileges.drop(user: initial.setUser, group: initial.setGroup)
            if initial.scans, access(initial.spoolPath, W_OK | X_OK) != 0 {
                throw DaemonError("spool_path \(initial.spoolPath) is not writable: \(errnoText())")
            }
        } catch {
            if let pidfile = initial.pidfile { Privileges.removePidfile(pidfile) }
            servers.forEach { try? $0.close().wait() }
            try? group.syncShutdownGracefully()
            throw error
        }
        log.info("start", metadata: [
            "version": "\(Self.version)", "listener": "\(listener.name)",
            "address": "\(initial.bindAddress.withPort(initial.port))", "mode": "\(initial.mode?.rawValue ?? "-")",
        ])
        warnAboutBlindMessages(initial)
        for w in ConfigParser.warnings(initial) { log.warning("config", metadata: ["warning": "\(w)"]) }
        for w in maps.withLockedValue({ $0 }).warnings { log.warning("map", metadata: ["warning": "\(w)"]) }
        descriptorsAtStart = OpenFiles.inUse()
        warnAboutDescriptors(initial)
        pool.start()
        installSignals(servers: servers)
        stopped.wait()
        try? control?.close().wait()
        if control != nil { unlink(initial.controlPath) }
        abuse?.stop()
        dns.withLockedValue { $0?.resolver }?.shutdown()
        policyServices.shutdown()
        if let pidfile = initial.pidfile { Privileges.removePidfile(pidfile) }
        log.info("stop", metadata: ["sessions_left": "\(registry.count)"])
        try? group.syncShutdownGracefully()
        try? pool.syncShutdownGracefully()
        sink.flush()
    }

    private func installSignals(servers: [Channel]) {
        // USR1/USR2 are reserved for the state dump smtp-gated administrators know; until then, ignored.
        for sig in [SIGHUP, SIGTERM, SIGINT, SIGPIPE, SIGUSR1, SIGUSR2] { signal(sig, SIG_IGN) }
        let hup = DispatchSource.makeSignalSource(signal: SIGHUP, queue: signalQueue)
        hup.setEventHandler { [self] in reload() }
        let handlers: [DispatchSourceSignal] = [SIGTERM, SIGINT].map { sig in
            let s = DispatchSource.makeSignalSource(signal: sig, queue: signalQueue)
            s.setEventHandler { [self] in drain(servers: servers) }
            return s
        }
        signalSources = [hup] + handlers
        signalSources.forEach { $0.resume() }
    }

    private func reload() {
        do {
            try sink.reopen()
        } catch {
            log.error("reopen_log", metadata: ["error": "\(error)"])
        }
        let parsed = Self.load(configPath)
        switch parsed {
        case .success(let loaded):
            var new = loaded.config
            do {
                try Self.prepareSpool(new)
                try prepareDNS(new)
            } catch {
                log.error("reload", metadata: ["result": "failed", "error": "\(error)", "kept": "the running configuration"])
                return
            }
            let restartOnly = Self.restartOnlyChanges(startup, new)
            // The listener was built for the start-up mode; sessions must not switch modes under it.
            new.mode = startup.mode
            let oldMaxConnections = config.withLockedValue { current in
                defer { current = new }
                return current.maxConnections
            }
            helperKey.withLockedValue { $0 = loaded.helperKey }
            maps.withLockedValue { $0 = loaded.maps }
            policyServices.keep(only: new)
            abuse?.control.reconfigure(new)
            listener?.refreshLocalAddresses()
            if !restartOnly.isEmpty {
                log.warning("reload", metadata: ["restart_needed": "\(restartOnly.joined(separator: ","))"])
            }
            log.info("reload", metadata: ["result": "ok", "file": "\(configPath)"])
            warnAboutBlindMessages(new)
            if new.maxConnections != oldMaxConnections { warnAboutDescriptors(new) }
        case .failure(let error):
            log.error("reload", metadata: ["result": "failed", "error": "\(error)", "kept": "the running configuration"])
        }
    }

    /// Stops accepting, lets sessions finish for `shutdown_timeout`, then closes what is left.
    private func drain(servers: [Channel]) {
        let first = stopping.withLockedValue { s -> Bool in
            defer { s = true }
            return !s
        }
        guard first else { return }
        let bound = config.withLockedValue { $0.shutdownTimeout }
        log.info("draining", metadata: ["sessions": "\(registry.count)", "shutdown_timeout": "\(bound)"])
        servers.forEach { $0.close(promise: nil) }
        let deadline = DispatchTime.now() + bound
        @Sendable func poll() {
            if registry.count == 0 {
                stopped.signal()
            } else if DispatchTime.now() >= deadline {
                registry.forEach { $0.shutdown() }
                signalQueue.asyncAfter(deadline: .now() + 1) { [self] in stopped.signal() }
            } else {
                signalQueue.asyncAfter(deadline: .now() + 0.05) { poll() }
            }
        }
        poll()
    }

    /// Options read only at start-up whose new values a reload cannot apply.
    static func restartOnlyChanges(_ old: Config, _ new: Config) -> [String] {
        var names: [String] = []
        if old.mode != new.mode { names.append("mode") }
        if old.bindAddress != new.bindAddress { names.append("bind_address") }
        if old.port != new.port { names.append("port") }
        if old.connectQueue != new.connectQueue { names.append("connect_queue") }
        if old.pidfile != new.pidfile { names.append("pidfile") }
        if old.setUser != new.setUser { names.append("set_user") }
        if old.setGroup != new.setGroup { names.append("set_group") }
        if old.maxScans != new.maxScans { names.append("max_scans") }
        if old.abuseControl != new.abuseControl { names.append("abuse_control") }
        if old.stateStore != new.stateStore { names.append("state_store") }
        if old.controlPath != new.controlPath { names.append("control_path") }
        return names
    }

    /// The origin finder for a session under `config` (the mode itself is fixed at start-up).
    private func finder(for config: Config, on loop: EventLoop) -> OriginFinder {
        switch config.mode ?? .fixed {
        case .fixed, .fixedXClient:
            return FixedOrigin(server: config.fixedServer, port: config.fixedServerPort)
        case .netfilter:
            return NetfilterOrigin()
        case .tproxy, .getsockname:
            return LocalAddressOrigin()
        case .remoteUDP:
            let settings = HelperLookupSettings(
                port: config.remotePort, retries: config.remoteUDPRetries, timeout: config.timeoutLookup,
                secret: config.remoteUDPSecret, key: helperKey.withLockedValue { $0 })
            return RemoteUDPOrigin(client: helperClient(on: loop), settings: settings)
        }
    }

    /// Scanning with STARTTLS relayed leaves every message after a STARTTLS unscanned: say so once.
    private func warnAboutBlindMessages(_ config: Config) {
        guard config.scans, !config.forbidStartTLS else { return }
        log.warning("config", metadata: [
            "warning": "messages after STARTTLS are relayed encrypted and not scanned (forbid_starttls yes scans every message)",
        ])
    }

    /// Said when the open-files limit (raised to the hard limit at start) cannot serve `max_connections`:
    /// otherwise the first sign would be clients refused with 421 4.3.2 at the busiest hour.
    private func warnAboutDescriptors(_ config: Config) {
        guard let limit = OpenFiles.limit(), let inUse = descriptorsAtStart,
              let short = DescriptorBudget.shortfall(config, maxScans: startup.maxScans, limit: limit, inUse: inUse,
                                                     loops: System.coreCount) else { return }
        events.record(ListenerLog.descriptorLimit(short))
    }

    /// The spool and action script a session under `config` uses; one action runner per script setting.
    private func extras(for config: Config) -> SessionExtras {
        let scanning = ScanServices(config: config, limiter: scanLimiter).map {
            Scanning(services: $0, spoolPath: config.spoolPath, spoolMemory: config.spoolMemory,
                     leaveOn: config.spoolLeaveOn, pool: pool)
        }
        let current = dns.withLockedValue { $0 }
        let dnsbl = config.dnsbl.isEmpty ? nil : current?.check
        let resolver = config.usesDNS ? current?.resolver : nil
        let maps = maps.withLockedValue { $0 }
        guard let script = config.actionScript else {
            return SessionExtras(scanning: scanning, actions: nil, dnsbl: dnsbl, resolver: resolver, maps: maps,
                                 policyServices: policyServices)
        }
        let name = config.resolvedProxyName(hostName: Privileges.hostName())
        let key = "\(script)|\(config.timeoutAction)|\(config.maxActions)|\(name)"
        let runner = actions.withLockedValue { current -> ActionRunner in
            if let current, current.key == key { return current.runner }
            let made = ActionRunner(script: script, timeout: config.timeoutAction, maxConcurrent: config.maxActions,
                                    proxyName: name, log: { [events] in events.record($0) })
            current = (key, made)
            return made
        }
        return SessionExtras(scanning: scanning, actions: runner, dnsbl: dnsbl, resolver: resolver, maps: maps,
                             policyServices: policyServices)
    }

    /// The resolver and blocklist check for `config`, made before the configuration takes effect (so a
    /// resolver that cannot start fails the start or the reload). A resolver replaced or no longer needed
    /// is shut down once the lookups it has in flight are past their deadline.
    private func prepareDNS(_ config: Config) throws {
        let settings = Resolver.Settings(config: config)
        let current = dns.withLockedValue { $0 }
        guard config.usesDNS else {
            dns.withLockedValue { $0 = nil }
            if let old = current?.resolver { retire(old) }
            return
        }
        let resolver: Resolver
        if let current, current.resolver.settings == settings {
            resolver = current.resolver
        } else {
            do {
                resolver = try Resolver(settings)
            } catch {
                throw DaemonError("\(error)")
            }
        }
        let check = DNSBLCheck(sites: config.dnsbl, threshold: config.dnsblThreshold, resolver: resolver,
                               warn: { [events] in events.record($0) })
        dns.withLockedValue { $0 = (resolver, check) }
        if let old = current?.resolver, old !== resolver { retire(old) }
    }

    private func retire(_ resolver: Resolver) {
        signalQueue.asyncAfter(deadline: .now() + resolver.settings.timeout + 1) { resolver.shutdown() }
    }

    /// With a scanner configured the spool directory must exist: made owner-only (for `set_user` when set).
    static func prepareSpool(_ config: Config) throws {
        guard config.scans else { return }
        var st = stat()
        if stat(config.spoolPath, &st) == 0 {
            guard st.st_mode & S_IFMT == S_IFDIR else { throw DaemonError("spool_path \(config.spoolPath) is not a directory") }
            return
        }
        guard mkdir(config.spoolPath, 0o700) == 0 else {
            throw DaemonError("spool_path \(config.spoolPath): cannot create: \(errnoText())")
        }
        if let user = config.setUser, let pw = getpwnam(user) {
            _ = chown(config.spoolPath, pw.pointee.pw_uid, pw.pointee.pw_gid)
        }
    }

    /// Each event loop's helper client, made on first use.
    private func helperClient(on loop: EventLoop) -> HelperClient {
        helperClients.withLockedValue { clients in
            if let c = clients[ObjectIdentifier(loop)] { return c }
            let c = HelperClient(loop: loop)
            clients[ObjectIdentifier(loop)] = c
            return c
        }
    }

    /// A configuration with what it refers to already read (the v2 key), so a reload with an unreadable key
    /// fails as a whole and keeps the running configuration.
    public struct LoadedConfig: Sendable {
        public var config: Config
        var helperKey: HelperKey?
        /// The restriction lists' access maps, read with the configuration.
        public var maps = AccessMapSet()
    }

    public static func load(_ path: String) -> Result<LoadedConfig, ConfigError> {
        parse(path).flatMap(withOverrides).flatMap { config -> Result<LoadedConfig, ConfigError> in
            guard config.mode == .remoteUDP, let keyPath = config.remoteUDPKeyFile else {
                return .success(LoadedConfig(config: config))
            }
            do {
                return .success(LoadedConfig(config: config, helperKey: try HelperKeyFile.read(keyPath)))
            } catch {
                return .failure(ConfigError(file: path, line: nil, message: "remote_udp_key_file \(error)"))
            }
        }.flatMap(withMaps)
    }

    /// Every map a restriction names, so a broken one fails the load (a reload keeps the running maps).
    static func withMaps(_ loaded: LoadedConfig) -> Result<LoadedConfig, ConfigError> {
        do throws(AccessMapError) {
            var l = loaded
            l.maps = try AccessMapSet.load(loaded.config) { path in
                try readFile(path, limit: AccessMaps.maxFileBytes).get()
            }
            return .success(l)
        } catch {
            return .failure(error)
        }
    }

    /// `ratelimit_override cidr:FILE` read with the configuration, so a bad file fails the load (and a reload
    /// keeps the running configuration).
    static func withOverrides(_ config: Config) -> Result<Config, ConfigError> {
        guard let file = config.ratelimitOverride else { return .success(config) }
        return readFile(file, limit: RateOverrides.maxBytes).flatMap { bytes in
            guard let text = String(validating: bytes, as: UTF8.self) else {
                return .failure(ConfigError(file: file, line: nil, message: "file is not valid UTF-8 text"))
            }
            return Result { () throws(ConfigError) in
                var c = config
                c.rateOverrides = try RateOverrides.parse(text, file: file, limits: config.rateLimits,
                                                         ipv6Prefix: config.ratelimitIPv6Prefix)
                return c
            }
        }
    }

    static func parse(_ path: String) -> Result<Config, ConfigError> {
        readFile(path, limit: 1 << 20).flatMap { data in
            Result { () throws(ConfigError) in try ConfigParser.parse(bytes: data, file: path) }
        }
    }

    static func readFile(_ path: String, limit: Int) -> Result<[UInt8], ConfigError> {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            return .failure(ConfigError(file: path, line: nil, message: "cannot open: \(errnoText())"))
        }
        defer { close(fd) }
        var data = [UInt8]()
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = read(fd, &chunk, chunk.count)
            if n < 0, errno == EINTR { continue }
            guard n >= 0 else {
                return .failure(ConfigError(file: path, line: nil, message: "cannot read: \(errnoText())"))
            }
            if n == 0 { break }
            data.append(contentsOf: chunk[0..<n])
            if data.count > limit {
                return .failure(ConfigError(file: path, line: nil, message: "file is larger than \(limit >> 20) MiB"))
            }
        }
        return .success(data)
    }
}
