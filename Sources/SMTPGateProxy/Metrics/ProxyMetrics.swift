import CoreMetrics
import NIOConcurrencyHelpers
import SMTPGateCore
import SMTPGateRuntime

/// The daemon's metrics. Events count as they happen (`MetricsSubscriber`); what is a level rather than
/// an event (open sessions, active locks, dropped log lines kept by the log sink) is read at each scrape.
final class ProxyMetrics: ServiceObserver {
    let registry = MetricsRegistry()
    let locksCreated: LabeledCounters
    let scans: LabeledCounters
    private let scanTimers = NIOLockedValueBox<[ScanReport.Scanner: CoreMetrics.Timer]>([:])
    private let listeners = NIOLockedValueBox<[String: ListenerMetrics]>([:])
    private let forwards = NIOLockedValueBox<[String: ForwardMetrics]>([:])
    private let remoteUDP: LabeledCounters
    private let remoteUDPTimer: CoreMetrics.Timer
    private let dns: LabeledCounters
    private let dnsTimers: [DNSType: CoreMetrics.Timer]
    private let policyServices: LabeledCounters
    private let policyTimers = NIOLockedValueBox<[String: CoreMetrics.Timer]>([:])
    private let actionRuns: LabeledCounters
    private let logDropped: CoreMetrics.Counter
    private let logDroppedCounted = NIOLockedValueBox(0)
    private let openListeners = NIOLockedValueBox<Set<String>>([])

    init(version: String, started: Double) {
        locksCreated = LabeledCounters(.locksCreated, fixed: [], registry: registry)
        scans = LabeledCounters(.scans, fixed: [], registry: registry)
        logDropped = registry.counter(.logLinesDropped)
        remoteUDP = LabeledCounters(.remoteUDPLookups, fixed: [], known: ServiceObservation.HelperResult.allCases.map(\.rawValue),
                                    registry: registry)
        remoteUDPTimer = registry.timer(.remoteUDPLookupDuration)
        dns = LabeledCounters(.dnsLookups, fixed: [], registry: registry)
        var timers: [DNSType: CoreMetrics.Timer] = [:]
        for type in DNSType.allCases { timers[type] = registry.timer(.dnsLookupDuration, type.name) }
        dnsTimers = timers
        policyServices = LabeledCounters(.policyServiceQueries, fixed: [], registry: registry)
        actionRuns = LabeledCounters(.actionRuns, fixed: [], registry: registry)
        registry.gauge(.buildInfo, version).set(1)
        registry.gauge(.startTime).set(started)
    }

    func listener(_ name: String) -> ListenerMetrics {
        listeners.withLockedValue { all in
            if let m = all[name] { return m }
            let m = ListenerMetrics(name, registry: registry)
            all[name] = m
            return m
        }
    }

    func forwardListener(_ name: String) -> ForwardMetrics {
        forwards.withLockedValue { all in
            if let m = all[name] { return m }
            let m = ForwardMetrics(name, registry: registry)
            all[name] = m
            return m
        }
    }

    func observe(_ observation: ServiceObservation) {
        switch observation {
        case .helperLookup(let result, let seconds):
            remoteUDP.increment(result.rawValue)
            if let seconds { remoteUDPTimer.record(seconds: seconds) }
        case .dnsLookup(let type, let result, let seconds):
            dns.increment(type.name, result.rawValue)
            if let seconds { dnsTimers[type]?.record(seconds: seconds) }
        case .policyQuery(let service, let result, let seconds):
            policyServices.increment(service, result.rawValue)
            policyTimer(service).record(seconds: seconds)
        case .actionRun(let result):
            actionRuns.increment(result.rawValue)
        }
    }

    private func policyTimer(_ service: String) -> CoreMetrics.Timer {
        policyTimers.withLockedValue { all in
            if let t = all[service] { return t }
            let t = registry.timer(.policyServiceDuration, service)
            all[service] = t
            return t
        }
    }

    func scanTimer(_ scanner: ScanReport.Scanner) -> CoreMetrics.Timer {
        scanTimers.withLockedValue { all in
            if let t = all[scanner] { return t }
            let t = registry.timer(.scanDuration, scanner.rawValue)
            all[scanner] = t
            return t
        }
    }

    /// The exposition text, with the levels read now. `logDropped` is the sink's running total; `locks` is
    /// nil while abuse control is off (then there is no `smtpgate_locks_active`).
    func render(openSessions: [(listener: String, count: Int)], locks: Int?, logDropped total: Int) -> [UInt8] {
        let names = Set(openSessions.map(\.listener))
        // A listener a reload removed has no sessions left to count: its gauge says 0, not its last value.
        let gone = openListeners.withLockedValue { seen -> Set<String> in
            defer { seen.formUnion(names) }
            return seen.subtracting(names)
        }
        for name in gone { registry.gauge(.sessionsOpen, name).set(0) }
        for (name, count) in openSessions { registry.gauge(.sessionsOpen, name).set(count) }
        if let locks { registry.gauge(.locksActive).set(locks) }
        let delta = logDroppedCounted.withLockedValue { counted -> Int in
            defer { counted = max(counted, total) }
            return max(0, total - counted)
        }
        if delta > 0 { logDropped.increment(by: Int64(delta)) }
        return registry.render()
    }
}
