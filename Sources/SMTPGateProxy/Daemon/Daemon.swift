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

/// The running proxy: owns the event loops, the listeners and forwards, the live configuration and the signals.
public final class Daemon: @unchecked Sendable {
    public static let version = "0.1.0"

    private let configPath: String
    /// The configuration the daemon started with: its start-up-only options stay in force until a restart.
    private let startup: ConfigFile
    /// The options before the first section of the running configuration: the daemon's own.
    private let global: NIOLockedValueBox<Config>
    private let log: Logger
    private let sink: LogSink
    private let events: EventLog
    private let ids = SessionIDs()
    /// The listeners and forwards in force, by name, in file order; changed on the signal queue only.
    private var running: [RunningListener] = []
    /// The file in force, for the reload line's `changed=` (set and read on the signal queue).
    private var loadedFile: ConfigFile
    /// Listeners a reload removed or replaced whose sessions are still finishing.
    private var retired: [RunningListener] = []
    /// Every port listened on, for the loop check.
    private let listenPorts = NIOLockedValueBox<Set<Int>>([])
    private let group = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
    private var signalSources: [DispatchSourceSignal] = []
    private let signalQueue = DispatchQueue(label: "smtpgate.signals")
    private let stopped = DispatchSemaphore(value: 0)
    private let stopping = NIOLockedValueBox(false)
    /// The v2 key for remote-udp queries, read with the configuration (start-up and reload).
    private let helperKey: NIOLockedValueBox<HelperKey?>
    private let maps: NIOLockedValueBox<AccessMapSet>
    private let policyServices: PolicyServiceClients
    private let helperClients = NIOLockedValueBox<[ObjectIdentifier: HelperClient]>([:])
    /// Spool files and action scripts are handled here, off the event loops.
    private let pool = NIOThreadPool(numberOfThreads: 2)
    private let scanLimiter: ScanLimiter
    /// For `spam_max_load` (read at most once a second).
    private let loadAverage = LoadAverage()
    /// The action runner for the current script settings (a reload that changes them makes a new one).
    private let actions = NIOLockedValueBox<(key: String, runner: ActionRunner)?>(nil)
    /// Descriptors open once listening, before any session: the base of the descriptor budget.
    private var descriptorsAtStart: Int?
    /// Locks and rate limits with their state store, when configured.
    private var abuse: AbuseService?
    private var control: Channel?
    private var admin: Channel?
    private let adminAllow: NIOLockedValueBox<[CIDR]>
    private let metrics: ProxyMetrics
    /// The DNS resolver and the `dnsbl` check of the running configuration, when it asks DNS (blocklists,
    /// restrictions that look names up).
    private let dns = NIOLockedValueBox<(resolver: Resolver, checks: [String: DNSBLCheck])?>(nil)

    /// Listeners with the same blocklists share one check.
    private static func dnsblKey(_ c: Config) -> String { "\(DNSBLSite.show(c.dnsbl))|\(c.dnsblThreshold)" }

    public init(configPath: String, loaded: LoadedConfig, sink: LogSink) {
        let config = loaded.file.global
        self.helperKey = NIOLockedValueBox(loaded.helperKey)
        self.maps = NIOLockedValueBox(loaded.maps)
        self.configPath = configPath
        self.startup = loaded.file
        self.loadedFile = loaded.file
        self.global = NIOLockedValueBox(config)
        self.sink = sink
        var logger = Logger(label: "smtpgate") { _ in SinkLogHandler(sink: sink) }
        logger.logLevel = .info
        self.log = logger
        self.events = EventLog(sink: sink)
        self.scanLimiter = ScanLimiter(limit: config.maxScans)
        self.adminAllow = NIOLockedValueBox(config.adminAllow)
        let metrics = ProxyMetrics(version: Self.version, started: Double(time(nil)))
        self.metrics = metrics
        self.policyServices = PolicyServiceClients(observer: metrics)
    }

    /// Runs until SIGTERM/SIGINT and the drain that follows. Throws on start-up failure.
    public func run() throws {
        let file = startup
        let initial = file.global
        Privileges.raiseFileLimit()
        do {
            try Privileges.apply(priority: initial.priority, limits: initial.limits)
        } catch {
            try? group.syncShutdownGracefully()
            throw error
        }
        let hostName = Privileges.hostName()
        do {
            try prepareDNS(file)
            abuse = try AbuseService.start(file, source: "\(hostName):\(initial.controlPath)", events: events,
                                           queue: signalQueue)
        } catch {
            try? group.syncShutdownGracefully()
            throw error
        }
        do {
            var service = ControlService(abuse: abuse?.control, events: events, ipv6Prefix: initial.lockIPv6Prefix)
            service.daemon = daemonControl()
            service.lockAdded = { [metrics] in metrics.locksCreated.increment($0.cause.rawValue) }
            control = try ControlServer.bind(path: initial.controlPath, group: group, service: service)
        } catch {
            abuse?.stop()
            try? group.syncShutdownGracefully()
            throw DaemonError("control_path \(initial.controlPath): cannot listen: \(error)")
        }
        do {
            running = try bindAll(file, plan: ListenerPlan.diff(running: [], next: ListenerEnd.all(file)), reusing: [])
            if let end = initial.adminListen { admin = try bindAdmin(end) }
        } catch {
            running.forEach { $0.close() }
            try? group.syncShutdownGracefully()
            throw error
        }
        listenPorts.withLockedValue { $0 = Self.ports(running) }
        if let pidfile = initial.pidfile { try Privileges.writePidfile(pidfile) }
        do {
            try Self.prepareSpool(file)
            try Privileges.drop(user: initial.setUser, group: initial.setGroup)
            if file.configs.contains(where: \.scans), access(initial.spoolPath, W_OK | X_OK) != 0 {
                throw DaemonError("spool_path \(initial.spoolPath) is not writable: \(errnoText())")
            }
        } catch {
            if let pidfile = initial.pidfile { Privileges.removePidfile(pidfile) }
            running.forEach { $0.close() }
            try? group.syncShutdownGracefully()
            throw error
        }
        let first = running.first
        var started: Logger.Metadata = [
            "version": "\(Self.version)", "file": "\(configPath)", "user": "\(initial.setUser ?? Privileges.userName())",
            "listeners": "\(running.map(\.name).joined(separator: ","))",
        ]
        if let first {
            started["address"] = "\(first.sockets.text)"
            started["mode"] = "\(first.sockets.mode?.rawValue ?? "-")"
        }
        log.info("start", metadata: started)
        for l in running { logListening(l) }
        for w in ConfigParser.warnings(file) { log.warning("config", metadata: ["warning": "\(w)"]) }
        for w in maps.withLockedValue({ $0 }).warnings { log.warning("map", metadata: ["warning": "\(w)"]) }
        descriptorsAtStart = OpenFiles.inUse()
        warnAboutDescriptors(file)
        pool.start()
        installSignals()
        stopped.wait()
        try? admin?.close().wait()
        try? control?.close().wait()
        if control != nil { unlink(initial.controlPath) }
        abuse?.stop()
        dns.withLockedValue { $0?.resolver }?.shutdown()
        policyServices.shutdown()
        if let pidfile = initial.pidfile { Privileges.removePidfile(pidfile) }
        log.info("stop", metadata: ["sessions_left": "\(sessionCount)"])
        try? group.syncShutdownGracefully()
        try? pool.syncShutdownGracefully()
        sink.flush()
    }

    private var sessionCount: Int { (running + retired).reduce(0) { $0 + $1.registry.count } }

    private func logListening(_ l: RunningListener) {
        log.info("listening", metadata: [
            "listener": "\(l.name)", "kind": "\(l.sockets.kind.rawValue)", "address": "\(l.sockets.text)",
            "mode": "\(l.sockets.mode?.rawValue ?? "-")",
        ])
    }

    private static func ports(_ listeners: [RunningListener]) -> Set<Int> {
        Set(listeners.flatMap { Array($0.sockets.ports) })
    }

    private func installSignals() {
        // USR2 is ignored (smtp-gated used it for nothing an operator needs).
        for sig in [SIGHUP, SIGTERM, SIGINT, SIGPIPE, SIGUSR1, SIGUSR2] { signal(sig, SIG_IGN) }
        let hup = DispatchSource.makeSignalSource(signal: SIGHUP, queue: signalQueue)
        hup.setEventHandler { [self] in reload() }
        let usr1 = DispatchSource.makeSignalSource(signal: SIGUSR1, queue: signalQueue)
        usr1.setEventHandler { [self] in writeStatefile() }
        let handlers: [DispatchSourceSignal] = [SIGTERM, SIGINT].map { sig in
            let s = DispatchSource.makeSignalSource(signal: sig, queue: signalQueue)
            s.setEventHandler { [self] in drain() }
            return s
        }
        signalSources = [hup, usr1] + handlers
        signalSources.forEach { $0.resume() }
    }

    /// The listeners and forwards of `file` as `plan` says: kept ones reused (their options are swapped in
    /// by the caller), added and rebound ones bound now. All or nothing: a bind failure closes what this
    /// call bound and throws naming the listener.
    private func bindAll(_ file: ConfigFile, plan: [ListenerPlan], reusing current: [RunningListener]) throws -> [RunningListener] {
        var out: [RunningListener] = []
        var made: [RunningListener] = []
        do {
            for step in plan {
                switch step {
                case .keep(let name):
                    if let same = current.first(where: { $0.name == name }) { out.append(same) }
                case .add(let name), .rebind(let name):
                    let l: RunningListener
                    if let end = ListenerEnd.all(file).first(where: { $0.name == name })?.end {
                        try refuseTakenPorts(name, end, ours: Self.ports(current))
                    }
                    if let section = file.listener(named: name) {
                        l = try bindSMTP(section, sockets: ListenerEnd(section))
                    } else if let section = file.forwards.first(where: { $0.name == name }) {
                        l = try bindForward(section, sockets: ListenerEnd(section))
                    } else {
                        continue
                    }
                    made.append(l)
                    out.append(l)
                case .remove:
                    break
                }
            }
        } catch {
            made.forEach { $0.close() }
            throw error
        }
        return out
    }

    private func bindForward(_ section: ForwardSection, sockets: ListenerEnd) throws -> RunningListener {
        let registry = SessionRegistry(ids: ids)
        let box = NIOLockedValueBox(section)
        let listener = ForwardListener(name: section.name, section: { box.withLockedValue { $0 } }, events: events,
                                       registry: registry, listenPorts: { [listenPorts] in listenPorts.withLockedValue { $0 } },
                                       makeFinder: { [unowned self] cfg, loop in finder(for: cfg, on: loop) },
                                       abuse: abuse?.control, metrics: metrics.forwardListener(section.name))
        let running = RunningListener(name: section.name, sockets: sockets, config: NIOLockedValueBox(section.config),
                                      registry: registry, forward: box, refresh: { listener.refreshLocalAddresses() })
        do {
            running.bound(try listener.bind(group: group, section: section))
        } catch {
            throw DaemonError(bindFailure(section.name, sockets, error))
        }
        return running
    }

    private func bindSMTP(_ section: ListenerSection, sockets: ListenerEnd) throws -> RunningListener {
        let registry = SessionRegistry(ids: ids)
        let box = NIOLockedValueBox(section.config)
        let listener = ProxyListener(name: section.name, config: { box.withLockedValue { $0 } },
                                     hostName: Privileges.hostName(), events: events, registry: registry,
                                     listenPorts: { [listenPorts] in listenPorts.withLockedValue { $0 } },
                                     makeFinder: { [unowned self] cfg, loop in finder(for: cfg, on: loop) },
                                     makeExtras: { [unowned self] cfg in extras(for: cfg) }, abuse: abuse?.control,
                                     metrics: metrics)
        let running = RunningListener(name: section.name, sockets: sockets, config: box, registry: registry,
                                      refresh: { listener.refreshLocalAddresses() })
        do {
            running.bound(try listener.bind(group: group, config: section.config))
        } catch {
            throw DaemonError(bindFailure(section.name, sockets, error))
        }
        return running
    }

    /// A port another process listens on is refused before binding; ports this daemon already holds are
    /// handed over (a reload that replaces a listener binds beside the old socket until it closes).
    private func refuseTakenPorts(_ name: String, _ end: ListenerEnd, ours: Set<Int>) throws {
        for port in end.ports where !ours.contains(port) && PortProbe.inUse(host: end.address.text, port: port) {
            throw DaemonError("\(name): cannot listen on \(end.address.withPort(port)): Address already in use (another process listens there)")
        }
    }

    /// Why a listener could not bind, with what to do when it is the dropped privileges.
    private func bindFailure(_ name: String, _ sockets: ListenerEnd, _ error: Error) -> String {
        var text = "\(name): cannot listen on \(sockets.text): \(error)"
        let privileged = sockets.ports.lowerBound < 1024 || sockets.mode == .tproxy
        if privileged, let user = global.withLockedValue({ $0.setUser }), descriptorsAtStart != nil {
            text += " (running as \(user) after set_user: a port below 1024 or a tproxy listener added by a reload needs a restart)"
        }
        return text
    }

    /// Applies a changed file: options of listeners whose sockets stay are swapped in, new and changed
    /// listeners are bound first (a failure keeps everything as it was), then removed and replaced ones stop
    /// accepting and their sessions finish as on SIGTERM.
    /// nil when the new file was taken; else why not (also logged).
    @discardableResult
    private func reload() -> String? {
        do {
            try sink.reopen()
        } catch {
            log.error("reopen_log", metadata: ["error": "\(error)"])
        }
        func failed(_ error: Any) -> String {
            log.error("reload", metadata: ["result": "failed", "error": "\(error)", "kept": "the running configuration"])
            return "\(error)"
        }
        let loaded: LoadedConfig
        switch Self.load(configPath) {
        case .success(let l): loaded = l
        case .failure(let error): return failed(error)
        }
        let file = loaded.file
        let problems = HostChecks.scriptProblems(file)
        guard problems.isEmpty else { return failed(problems.joined(separator: "; ")) }
        guard !stopping.withLockedValue({ $0 }) else { return "the daemon is stopping" }
        let next: [RunningListener]
        let plan = ListenerPlan.diff(running: running.map { ($0.name, $0.sockets) }, next: ListenerEnd.all(file))
        do {
            try Self.prepareSpool(file)
            try prepareDNS(file)
            next = try bindAll(file, plan: plan, reusing: running)
        } catch {
            return failed(error)
        }
        let new = file.global
        let restartOnly = Self.restartOnlyChanges(startup, file)
        let oldConfigs = running.map { $0.config.withLockedValue { $0 } }
        global.withLockedValue { $0 = new }
        adminAllow.withLockedValue { $0 = new.adminAllow }
        helperKey.withLockedValue { $0 = loaded.helperKey }
        maps.withLockedValue { $0 = loaded.maps }
        policyServices.keep(only: file.configs)
        abuse?.control.reconfigure(file)
        for section in file.listeners {
            next.first { $0.name == section.name }?.update(section.config)
        }
        for section in file.forwards {
            next.first { $0.name == section.name }?.update(section.config, forward: section)
        }
        let kept = Set(next.map(ObjectIdentifier.init))
        let gone = running.filter { !kept.contains(ObjectIdentifier($0)) }
        let added = next.filter { l in !running.contains { $0 === l } }
        running = next
        listenPorts.withLockedValue { $0 = Self.ports(next) }
        for old in gone { retire(old, shutdownTimeout: new.shutdownTimeout) }
        running.forEach { $0.refresh() }
        if !restartOnly.isEmpty {
            log.warning("reload", metadata: ["restart_needed": "\(restartOnly.joined(separator: ","))"])
        }
        for l in added { logListening(l) }
        func names(_ keep: (ListenerPlan) -> String?) -> String {
            let list = plan.compactMap(keep)
            return list.isEmpty ? "-" : list.joined(separator: ",")
        }
        let changed = ConfigParser.changes(from: loadedFile, to: file)
        loadedFile = file
        log.info("reload", metadata: [
            "result": "ok", "file": "\(configPath)", "listeners": "\(running.map(\.name).joined(separator: ","))",
            "changed": "\(changed.isEmpty ? "-" : (changed.prefix(100) + (changed.count > 100 ? ["+\(changed.count - 100)"] : [])).joined(separator: ","))",
            "added": "\(names { if case .add(let n) = $0 { n } else { nil } })",
            "removed": "\(names { if case .remove(let n) = $0 { n } else { nil } })",
            "rebound": "\(names { if case .rebind(let n) = $0 { n } else { nil } })",
        ])
        warnAboutBlindMessages(file)
        if running.map({ $0.config.withLockedValue { $0.maxConnections } }) != oldConfigs.map(\.maxConnections) {
            warnAboutDescriptors(file)
        }
        return nil
    }

    /// `smtpgate status`, `reload` and `stop` on the control socket.
    private func daemonControl() -> DaemonControl {
        DaemonControl(
            status: { [unowned self] loop in status(on: loop) },
            reload: { [unowned self] loop in
                let promise = loop.makePromise(of: String?.self)
                signalQueue.async { [self] in promise.succeed(reload()) }
                return promise.futureResult
            },
            stop: { [unowned self] in signalQueue.async { [self] in drain() } })
    }

    private let startedAt = Double(time(nil))
    private let startedClock = DispatchTime.now()

    /// The live view. The listener lists change on the signal queue, so they are read there; each session
    /// is read on its own event loop. Counters come from the metrics' exposition, as `/metrics` shows them.
    private func status(on loop: EventLoop) -> EventLoopFuture<DaemonStatus> {
        let promise = loop.makePromise(of: DaemonStatus.self)
        signalQueue.async { [self] in
            let listeners = running
            let all = listeners + retired
            let abuseControl = abuse?.control
            let (startedAt, startedClock, configPath, metrics, sink) = (startedAt, startedClock, configPath, metrics, sink)
            EventLoopFuture.whenAllSucceed(all.map { $0.registry.snapshots(on: loop) }, on: loop).map { per in
                var sessions = per.flatMap { $0 }.sorted { $0.age > $1.age }
                let omitted = max(0, sessions.count - DaemonStatus.maxSessions)
                if omitted > 0 { sessions.removeLast(omitted) }
                let open = Self.openSessions(listeners, all.map(\.name), per.map(\.count))
                let locks = abuseControl?.allLocks().count
                let text = metrics.render(openSessions: open, locks: locks, logDropped: sink.droppedTotal)
                let counts = ExpositionTotals.listeners(text)
                let rows = zip(listeners, open).map { l, o in
                    DaemonStatus.Listener(name: l.name, kind: l.sockets.kind == .smtp ? .smtp : .forward,
                                          address: l.sockets.text, mode: l.sockets.mode?.rawValue ?? "-", sessions: o.count,
                                          counts: counts[l.name] ?? .init())
                }
                let uptime = Double(DispatchTime.now().uptimeNanoseconds - startedClock.uptimeNanoseconds) / 1e9
                return DaemonStatus(version: Self.version, pid: Int(getpid()), started: startedAt, uptime: uptime,
                                    configFile: configPath, listeners: rows, sessions: sessions, sessionsOmitted: omitted,
                                    locks: locks, trackedClients: abuseControl?.trackedClients,
                                    counters: ExpositionTotals.counters(text).map { DaemonStatus.Counter(name: $0.name, value: $0.value) })
            }.cascade(to: promise)
        }
        return promise.futureResult
    }

    /// `/metrics` without the session table: only counts are read, so a scrape costs the same with 10 or
    /// 10,000 sessions open.
    private func exposition(on loop: EventLoop) -> EventLoopFuture<[UInt8]> {
        let promise = loop.makePromise(of: [UInt8].self)
        signalQueue.async { [self] in
            let all = running + retired
            let open = Self.openSessions(running, all.map(\.name), all.map(\.registry.count))
            promise.succeed(metrics.render(openSessions: open, locks: abuse?.control.allLocks().count, logDropped: sink.droppedTotal))
        }
        return promise.futureResult
    }

    /// Open sessions per running listener, in its order, with those still draining on a listener a reload
    /// replaced counted under its name; a listener removed while its sessions drain keeps a row until they end.
    private static func openSessions(_ running: [RunningListener], _ names: [String], _ counts: [Int]) -> [(listener: String, count: Int)] {
        var byName: [String: Int] = [:]
        for (name, n) in zip(names, counts) { byName[name, default: 0] += n }
        var out = running.map { (listener: $0.name, count: byName.removeValue(forKey: $0.name) ?? 0) }
        for name in byName.keys.sorted() { out.append((name, byName[name] ?? 0)) }
        return out
    }

    /// `admin_listen`: bound before privileges are dropped, so a port below 1024 works; `admin_allow` is read
    /// per connection, so a reload changes it.
    private func bindAdmin(_ end: AdminEndpoint) throws -> Channel {
        let allow = adminAllow
        do {
            let channel = try AdminServer.bind(host: end.address.text, port: end.port, allow: { allow.withLockedValue { $0 } },
                                               group: group) { [unowned self] route, loop in
                adminAnswer(route, on: loop)
            }
            log.info("admin_listen", metadata: ["address": "\(end)"])
            return channel
        } catch {
            throw DaemonError("admin_listen \(end): cannot listen: \(error)")
        }
    }

    private func adminAnswer(_ route: AdminRoute, on loop: EventLoop) -> EventLoopFuture<AdminResponse> {
        switch route {
        case .health:
            let draining = stopping.withLockedValue { $0 }
            return loop.makeSucceededFuture(draining ? .text(503, "Service Unavailable", "stopping") : .text(200, "OK", "ok"))
        case .metrics:
            return exposition(on: loop).map {
                AdminResponse(status: 200, reason: "OK", contentType: AdminResponse.metricsType, body: $0)
            }
        case .statusPage:
            return status(on: loop).map {
                AdminResponse(status: 200, reason: "OK", contentType: "text/html; charset=utf-8", body: Array(StatusPage.html($0).utf8))
            }
        case .notFound, .methodNotAllowed:
            // Answered by AdminServer itself; here only for the switch to be whole.
            return loop.makeSucceededFuture(.notFound)
        }
    }

    /// SIGUSR1: the state file (`statefile`, `statefile_type`, `statefile_perm`), written whole under a
    /// temporary name and renamed, so a reader never sees half of it.
    private func writeStatefile() {
        let c = global.withLockedValue { $0 }
        status(on: group.next()).whenComplete { [self] result in
            signalQueue.async { [self] in
                switch result {
                case .success(let s):
                    let text = StatusReport.statefile(s, c.statefileType)
                    if let error = Self.writeAtomically(c.statefile, text, mode: c.statefilePerm) {
                        log.warning("statefile", metadata: ["path": "\(c.statefile)", "error": "\(error)"])
                    } else {
                        log.info("statefile", metadata: ["path": "\(c.statefile)", "sessions": "\(s.sessions.count)"])
                    }
                case .failure(let error):
                    log.warning("statefile", metadata: ["path": "\(c.statefile)", "error": "\(error)"])
                }
            }
        }
    }

    /// nil when written; else why not.
    static func writeAtomically(_ path: String, _ text: String, mode: Int) -> String? {
        let tmp = path + ".tmp"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode_t(mode))
        guard fd >= 0 else { return "cannot create \(tmp): \(errnoText())" }
        let bytes = Array(text.utf8)
        var done = 0
        while done < bytes.count {
            let n = bytes[done...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if n <= 0 {
                let why = errnoText()
                close(fd)
                unlink(tmp)
                return "cannot write \(tmp): \(why)"
            }
            done += n
        }
        // The umask must not narrow what statefile_perm asks for.
        _ = fchmod(fd, mode_t(mode))
        close(fd)
        guard rename(tmp, path) == 0 else {
            let why = errnoText()
            unlink(tmp)
            return "cannot rename \(tmp) to \(path): \(why)"
        }
        return nil
    }

    /// A listener no longer in the configuration: it stops accepting, its sessions have `shutdown_timeout`
    /// to finish, then what is left is closed.
    private func retire(_ l: RunningListener, shutdownTimeout: Double) {
        l.close()
        retired.append(l)
        log.info("listener_stopped", metadata: ["listener": "\(l.name)", "sessions": "\(l.registry.count)"])
        let deadline = DispatchTime.now() + shutdownTimeout
        @Sendable func poll() {
            if l.registry.count == 0 || DispatchTime.now() >= deadline {
                l.registry.forEach { $0.shutdown() }
                retired.removeAll { $0 === l }
            } else {
                signalQueue.asyncAfter(deadline: .now() + 0.1) { poll() }
            }
        }
        signalQueue.asyncAfter(deadline: .now() + 0.1) { poll() }
    }

    /// Stops accepting, lets sessions finish for `shutdown_timeout`, then closes what is left.
    private func drain() {
        let first = stopping.withLockedValue { s -> Bool in
            defer { s = true }
            return !s
        }
        guard first else { return }
        let bound = global.withLockedValue { $0.shutdownTimeout }
        log.info("draining", metadata: ["sessions": "\(sessionCount)", "shutdown_timeout": "\(bound)"])
        running.forEach { $0.close() }
        let deadline = DispatchTime.now() + bound
        @Sendable func poll() {
            if sessionCount == 0 {
                stopped.signal()
            } else if DispatchTime.now() >= deadline {
                (running + retired).forEach { $0.registry.forEach { $0.shutdown() } }
                signalQueue.asyncAfter(deadline: .now() + 1) { [self] in stopped.signal() }
            } else {
                signalQueue.asyncAfter(deadline: .now() + 0.05) { poll() }
            }
        }
        poll()
    }

    /// Options read only at start-up whose new values a reload cannot apply.
    static func restartOnlyChanges(_ oldFile: ConfigFile, _ newFile: ConfigFile) -> [String] {
        let (old, new) = (oldFile.global, newFile.global)
        var names: [String] = []
        if old.pidfile != new.pidfile { names.append("pidfile") }
        if old.setUser != new.setUser { names.append("set_user") }
        if old.setGroup != new.setGroup { names.append("set_group") }
        if old.maxScans != new.maxScans { names.append("max_scans") }
        if oldFile.abuseControl != newFile.abuseControl { names.append("abuse_control") }
        if old.stateStore != new.stateStore { names.append("state_store") }
        if old.controlPath != new.controlPath { names.append("control_path") }
        if old.logFacility != new.logFacility { names.append("log_facility") }
        if old.logLevel != new.logLevel { names.append("log_level") }
        if old.priority != new.priority { names.append("priority") }
        if old.adminListen != new.adminListen { names.append("admin_listen") }
        for limit in Config.ResourceLimit.allCases where old.limits[limit] != new.limits[limit] { names.append(limit.rawValue) }
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

    /// A reload that turns scanning on with STARTTLS relayed: said again, as at start.
    private func warnAboutBlindMessages(_ file: ConfigFile) {
        guard file.listeners.contains(where: { $0.config.scansWithSTARTTLSRelayed }) else { return }
        log.warning("config", metadata: ["warning": "\(ConfigParser.blindMessages)"])
    }

    /// Said when the open-files limit (raised to the hard limit at start) cannot serve `max_connections`:
    /// otherwise the first sign would be clients refused with 421 4.3.2 at the busiest hour.
    private func warnAboutDescriptors(_ file: ConfigFile) {
        guard let limit = OpenFiles.limit(), let inUse = descriptorsAtStart,
              let short = DescriptorBudget.shortfall(file.configs, maxScans: startup.global.maxScans, limit: limit, inUse: inUse,
                                                     loops: System.coreCount) else { return }
        events.record(ListenerLog.descriptorLimit(short))
    }

    /// The spool and action script a session under `config` uses; one action runner per script setting.
    private func extras(for config: Config) -> SessionExtras {
        let scanning = ScanServices(config: config, limiter: scanLimiter, load: { [loadAverage] in loadAverage.current() }).map {
            Scanning(services: $0, spoolPath: config.spoolPath, spoolMemory: config.spoolMemory,
                     spoolPerm: config.spoolPerm, leaveOn: config.spoolLeaveOn, pool: pool)
        }
        let current = dns.withLockedValue { $0 }
        let dnsbl = config.dnsbl.isEmpty ? nil : current?.checks[Self.dnsblKey(config)]
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
                                    proxyName: name, observer: metrics, log: { [events] in events.record($0) })
            current = (key, made)
            return made
        }
        return SessionExtras(scanning: scanning, actions: runner, dnsbl: dnsbl, resolver: resolver, maps: maps,
                             policyServices: policyServices)
    }

    /// The resolver and blocklist check for `config`, made before the configuration takes effect (so a
    /// resolver that cannot start fails the start or the reload). A resolver replaced or no longer needed
    /// is shut down once the lookups it has in flight are past their deadline.
    private func prepareDNS(_ file: ConfigFile) throws {
        let config = file.global
        let settings = Resolver.Settings(config: config)
        let current = dns.withLockedValue { $0 }
        guard file.configs.contains(where: \.usesDNS) else {
            dns.withLockedValue { $0 = nil }
            if let old = current?.resolver { retire(old) }
            return
        }
        let resolver: Resolver
        if let current, current.resolver.settings == settings {
            resolver = current.resolver
        } else {
            do {
                resolver = try Resolver(settings, observer: metrics)
            } catch {
                throw DaemonError("\(error)")
            }
        }
        var checks: [String: DNSBLCheck] = [:]
        for c in file.configs where !c.dnsbl.isEmpty && checks[Self.dnsblKey(c)] == nil {
            checks[Self.dnsblKey(c)] = DNSBLCheck(sites: c.dnsbl, threshold: c.dnsblThreshold, resolver: resolver,
                                                  warn: { [events] in events.record($0) })
        }
        dns.withLockedValue { $0 = (resolver, checks) }
        if let old = current?.resolver, old !== resolver { retire(old) }
    }

    private func retire(_ resolver: Resolver) {
        signalQueue.asyncAfter(deadline: .now() + resolver.settings.timeout + 1) { resolver.shutdown() }
    }

    /// With a scanner configured the spool directory must exist: made owner-only (for `set_user` when set).
    static func prepareSpool(_ file: ConfigFile) throws {
        let config = file.global
        guard file.configs.contains(where: \.scans) else { return }
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
            let c = HelperClient(loop: loop, observer: metrics)
            clients[ObjectIdentifier(loop)] = c
            return c
        }
    }

    /// A configuration with what it refers to already read (the v2 key), so a reload with an unreadable key
    /// fails as a whole and keeps the running configuration.
    public struct LoadedConfig: Sendable {
        public var file: ConfigFile
        var helperKey: HelperKey?
        /// The restriction lists' access maps, read with the configuration.
        public var maps = AccessMapSet()

        /// The options before the first section (of a file without sections: its only listener's).
        public var config: Config { file.global }
    }

    public static func load(_ path: String) -> Result<LoadedConfig, ConfigError> {
        parse(path).flatMap(withOverrides).flatMap { file -> Result<LoadedConfig, ConfigError> in
            guard file.configs.contains(where: { $0.mode == .remoteUDP }), let keyPath = file.global.remoteUDPKeyFile else {
                return .success(LoadedConfig(file: file))
            }
            do {
                return .success(LoadedConfig(file: file, helperKey: try HelperKeyFile.read(keyPath)))
            } catch {
                return .failure(ConfigError(file: path, line: nil, message: "remote_udp_key_file \(error)"))
            }
        }.flatMap(withMaps)
    }

    /// Every map a restriction names, so a broken one fails the load (a reload keeps the running maps).
    static func withMaps(_ loaded: LoadedConfig) -> Result<LoadedConfig, ConfigError> {
        do throws(AccessMapError) {
            var l = loaded
            l.maps = try AccessMapSet.load(loaded.file.configs) { path in
                try readFile(path, limit: AccessMaps.maxFileBytes).get()
            }
            return .success(l)
        } catch {
            return .failure(error)
        }
    }

    /// `ratelimit_override cidr:FILE` read with the configuration, so a bad file fails the load (and a reload
    /// keeps the running configuration).
    static func withOverrides(_ file: ConfigFile) -> Result<ConfigFile, ConfigError> {
        let config = file.global
        guard let path = config.ratelimitOverride else { return .success(file) }
        return readFile(path, limit: RateOverrides.maxBytes).flatMap { bytes in
            guard let text = String(validating: bytes, as: UTF8.self) else {
                return .failure(ConfigError(file: path, line: nil, message: "file is not valid UTF-8 text"))
            }
            return Result { () throws(ConfigError) in
                let overrides = try RateOverrides.parse(text, file: path, limits: Self.allLimits(file),
                                                        ipv6Prefix: config.ratelimitIPv6Prefix)
                var f = file
                f.global.rateOverrides = overrides
                for i in f.listeners.indices { f.listeners[i].config.rateOverrides = overrides }
                for i in f.forwards.indices { f.forwards[i].config.rateOverrides = overrides }
                return f
            }
        }
    }

    /// Every window some listener limits, for checking `ratelimit_override` (an override applies to the
    /// windows of the same length on each listener that has them).
    static func allLimits(_ file: ConfigFile) -> [RateKind: RateLimitSpec] {
        var windows: [RateKind: [RateWindow]] = [:]
        for c in [file.global] + file.listeners.map(\.config) {
            for (kind, spec) in c.rateLimits { windows[kind, default: []] += spec.windows }
        }
        return windows.mapValues { RateLimitSpec(windows: $0) }
    }

    public static let maxConfigBytes = 1 << 20

    static func parse(_ path: String) -> Result<ConfigFile, ConfigError> {
        readFile(path, limit: maxConfigBytes).flatMap { data in
            Result { () throws(ConfigError) in try ConfigParser.parseFile(bytes: data, file: path) }
        }
    }

    public static func readFile(_ path: String, limit: Int) -> Result<[UInt8], ConfigError> {
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
