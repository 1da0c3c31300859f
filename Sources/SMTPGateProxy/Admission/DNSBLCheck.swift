import NIOConcurrencyHelpers
import NIOCore
import SMTPGateCore

/// `dnsbl`: asks every zone at once for the real client and scores the answers. A zone that cannot be
/// asked counts nothing, and says so at most once a minute (`dnsbl_error`), however many sessions it fails.
final class DNSBLCheck: @unchecked Sendable {
    let sites: [DNSBLSite]
    let threshold: Int
    private let zones: [String]
    private let resolver: Resolver
    private let warnings: RateLimitedWarnings

    init(sites: [DNSBLSite], threshold: Int, resolver: Resolver, warn: @escaping @Sendable (LogRecord) -> Void) {
        self.sites = sites
        self.threshold = threshold
        var zones: [String] = []
        for s in sites where !zones.contains(s.zone) { zones.append(s.zone) }
        self.zones = zones
        self.resolver = resolver
        self.warnings = RateLimitedWarnings(interval: 60, emit: warn)
    }

    /// The verdict on `address` (4 or 16 bytes), on `loop`; never a failed future.
    func verdict(_ address: [UInt8], on loop: any EventLoop) -> EventLoopFuture<DNSBLVerdict> {
        let shown = AddressBytes.format(AddressBytes.unmapped(address))
        let questions = zones.map { zone in
            DNSName.reversed(address, zone: zone).map { resolver.lookup($0, .a, on: loop) }
                ?? loop.makeSucceededFuture(.failure(.badName))
        }
        return EventLoopFuture.whenAllComplete(questions, on: loop).map { [zones, sites, threshold, warnings] results in
            var answers: [String: DNSAnswer] = [:]
            for (zone, r) in zip(zones, results) {
                answers[zone] = (try? r.get()) ?? .failure(.resolver("no answer"))
            }
            let v = DNSBLVerdict.score(client: shown, sites: sites, threshold: threshold, answers: answers)
            for f in v.failed { warnings.note(key: f.zone) { DNSBLLog.error(zone: f.zone, f.failure, suppressed: $0) } }
            return v
        }
    }
}

/// One warning per key per interval; the ones in between are counted and the next line says how many.
final class RateLimitedWarnings: @unchecked Sendable {
    private let interval: Double
    private let emit: @Sendable (LogRecord) -> Void
    private let lock = NIOLock()
    private var last: [String: (at: NIODeadline, suppressed: Int)] = [:]
    /// Keys are configured zones: a handful, but bounded all the same.
    private let maxKeys = 1024

    init(interval: Double, emit: @escaping @Sendable (LogRecord) -> Void) {
        self.interval = interval
        self.emit = emit
    }

    func note(key: String, _ make: (_ suppressed: Int) -> LogRecord) {
        let now = NIODeadline.now()
        let suppressed: Int? = lock.withLock {
            if let prev = last[key], now < prev.at + .nanoseconds(Int64(interval * 1e9)) {
                last[key] = (prev.at, prev.suppressed + 1)
                return nil
            }
            let n = last[key]?.suppressed ?? 0
            if last.count >= maxKeys, last[key] == nil { last.removeAll() }
            last[key] = (now, 0)
            return n
        }
        if let suppressed { emit(make(suppressed)) }
    }
}
