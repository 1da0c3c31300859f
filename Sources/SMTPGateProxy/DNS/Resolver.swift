#if canImport(Glibc)
import Glibc
#endif
import CUnbound
import Dispatch
import NIOConcurrencyHelpers
import NIOCore
import SMTPGateCore

/// The daemon's one DNS resolver: libunbound (its cache honours each record's TTL, it retries over TCP
/// when an answer is truncated) driven from a thread of its own, so no event loop ever waits on DNS.
/// Each lookup has a deadline (`timeout`), after which it is cancelled and answered `.timeout`; at most
/// `maxInFlight` run at once, more are answered `.busy` at once. Every lookup is answered exactly once.
public final class Resolver: @unchecked Sendable {
    public struct Settings: Sendable, Equatable {
        /// `ADDRESS` or `ADDRESS@PORT`s to forward every question to; none reads `resolvConf`.
        public var servers: [String]
        public var resolvConf: String
        public var timeout: Double
        public var maxInFlight: Int

        public init(servers: [String] = [], resolvConf: String = "/etc/resolv.conf", timeout: Double = 5, maxInFlight: Int = 1000) {
            self.servers = servers
            self.resolvConf = resolvConf
            self.timeout = timeout
            self.maxInFlight = maxInFlight
        }

        public init(config: Config) {
            self.init(servers: config.dnsServers.map(\.description), timeout: config.timeoutDNS)
        }
    }

    /// How long an answer is kept: a listing at most an hour, "not listed" at most 5 minutes, whatever
    /// TTL the zone gives (some give a day, and a delisted client would wait that long).
    static let cacheMaxTTL = 3600
    static let cacheMaxNegativeTTL = 300

    public struct SetupError: Error, CustomStringConvertible {
        public let description: String
    }

    /// Answers kept in front of libunbound's cache; one per DNSBL zone per client asked within the TTL.
    static let cacheEntries = 100_000

    /// Records kept per answer: a blocklist answers with one or two, an MX set rarely with more.
    static let maxRecords = 64

    final class Query {
        let name: String
        let type: DNSType
        let started: Double
        let deadline: Double
        let done: @Sendable (DNSAnswer) -> Void
        var asyncID: Int32 = 0
        weak var owner: Resolver?

        init(name: String, type: DNSType, started: Double, deadline: Double, done: @escaping @Sendable (DNSAnswer) -> Void) {
            self.name = name
            self.type = type
            self.started = started
            self.deadline = deadline
            self.done = done
        }
    }

    public let settings: Settings
    private let observer: ServiceObserver?
    private let ctx: OpaquePointer
    private let queue = DispatchQueue(label: "smtpgate.resolver")
    private let finished = DispatchSemaphore(value: 0)
    private let wakeRead: Int32
    private let wakeWrite: Int32

    // Under `lock`: what the callers handed over and the thread has not taken yet.
    private let lock = NIOLock()
    private var submitted: [Query] = []
    private var stopping = false
    private var _inFlight = 0

    // Only on the resolver's thread.
    private var pending: [ObjectIdentifier: Query] = [:]
    /// Under `cacheLock`: taken on the asking threads and the resolver's.
    private var cache = AnswerCache(capacity: Resolver.cacheEntries)
    private let cacheLock = NIOLock()

    public init(_ settings: Settings, observer: ServiceObserver? = nil) throws {
        // Everything that can fail happens before the properties are set: a class whose init throws
        // after that runs its deinit, which would wait for a thread that never started.
        let ctx = try Self.makeContext(settings)
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else {
            ub_ctx_delete(ctx)
            throw SetupError(description: "cannot make the resolver's wake-up pipe: \(String(cString: strerror(errno)))")
        }
        for fd in fds {
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        }
        self.settings = settings
        self.observer = observer
        self.ctx = ctx
        (wakeRead, wakeWrite) = (fds[0], fds[1])
        queue.async { self.run() }
    }

    private static func makeContext(_ settings: Settings) throws -> OpaquePointer {
        guard let ctx = ub_ctx_create() else { throw SetupError(description: "cannot create the DNS resolver (out of memory)") }
        do {
            // A forwarder on this host (a local unbound or dnsmasq) is the common case, not a mistake.
            try check(c("do-not-query-localhost:") { o in c("no") { ub_ctx_set_option(ctx, o, $0) } }, "do-not-query-localhost")
            // An ISP's own servers answer for its private ranges (PTR of 10.x customers): ask them.
            try check(c("unblock-lan-zones:") { o in c("yes") { ub_ctx_set_option(ctx, o, $0) } }, "unblock-lan-zones")
            // And for loopback's reverse zone: unbound's built-in answer would hide what they serve there.
            try check(c("local-zone:") { o in c("127.in-addr.arpa. transparent") { ub_ctx_set_option(ctx, o, $0) } }, "local-zone")
            try check(c("cache-max-ttl:") { o in c(String(cacheMaxTTL)) { ub_ctx_set_option(ctx, o, $0) } }, "cache-max-ttl")
            try check(c("cache-max-negative-ttl:") { o in c(String(cacheMaxNegativeTTL)) { ub_ctx_set_option(ctx, o, $0) } }, "cache-max-negative-ttl")
            if !settings.servers.isEmpty {
                for server in settings.servers {
                    try check(c(server) { ub_ctx_set_fwd(ctx, $0) }, "dns_server \(server)")
                }
            } else {
                try check(c(settings.resolvConf) { ub_ctx_resolvconf(ctx, $0) }, "reading \(settings.resolvConf)")
            }
            try check(ub_ctx_async(ctx, 1), "starting its thread")
        } catch {
            ub_ctx_delete(ctx)
            throw error
        }
        return ctx
    }

    deinit {
        shutdown()
    }

    /// Lookups asked and not answered yet.
    public var inFlight: Int { lock.withLock { _inFlight } }

    /// Asks `name` for `type`; `done` is called once, on the resolver's thread (or at once for a bad name,
    /// a full resolver or one shut down).
    public func lookup(_ name: String, _ type: DNSType, done: @escaping @Sendable (DNSAnswer) -> Void) {
        guard DNSName.isValid(name) else {
            observer?.observe(.dnsLookup(type, .badName, seconds: nil))
            return done(.failure(.badName))
        }
        let key = AnswerCache.Key(name, type)
        let now = Self.now()
        if let kept = cacheLock.withLock({ cache.answer(key, now: now) }) {
            observer?.observe(.dnsLookup(type, .cached, seconds: nil))
            return done(kept)
        }
        let query = Query(name: name, type: type, started: now, deadline: now + max(0.01, settings.timeout), done: done)
        let refusal: DNSFailure? = lock.withLock {
            if stopping { return .resolver("shut down") }
            if _inFlight >= settings.maxInFlight { return .busy }
            _inFlight += 1
            submitted.append(query)
            return nil
        }
        if let refusal {
            observer?.observe(.dnsLookup(type, .init(.failure(refusal)), seconds: nil))
            return done(.failure(refusal))
        }
        wake()
    }

    /// The same, answered on `loop`; the future never fails.
    public func lookup(_ name: String, _ type: DNSType, on loop: any EventLoop) -> EventLoopFuture<DNSAnswer> {
        let promise = loop.makePromise(of: DNSAnswer.self)
        lookup(name, type) { promise.succeed($0) }
        return promise.futureResult
    }

    /// Answers everything still pending with a failure and stops the thread. Idempotent.
    public func shutdown() {
        let first: Bool = lock.withLock {
            defer { stopping = true }
            return !stopping
        }
        guard first else { return }
        wake()
        finished.wait()
    }

    // MARK: - The resolver's thread

    private func run() {
        let ubfd = ub_fd(ctx)
        while true {
            let (taken, stop) = lock.withLock { () -> ([Query], Bool) in
                defer { submitted.removeAll() }
                return (submitted, stopping)
            }
            if stop {
                for q in taken { q.done(.failure(.resolver("shut down"))) }
                break
            }
            for q in taken { start(q) }
            let now = Self.now()
            let next = pending.values.map(\.deadline).min() ?? now + 1
            let waitMs = Int32(max(0, min(1000, (next - now) * 1000)).rounded(.up))
            var fds = [pollfd(fd: ubfd, events: Int16(POLLIN), revents: 0), pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0)]
            let n = poll(&fds, 2, waitMs)
            if n > 0, fds[0].revents != 0 { _ = ub_process(ctx) }
            if n > 0, fds[1].revents != 0 { drainWake() }
            expire(now: Self.now())
        }
        for q in pending.values {
            if ub_cancel(ctx, q.asyncID) == 0 { Unmanaged.passUnretained(q).release() }
            finish(q, .failure(.resolver("shut down")))
        }
        pending.removeAll()
        ub_ctx_delete(ctx)
        Glibc.close(wakeRead)
        Glibc.close(wakeWrite)
        finished.signal()
    }

    private func start(_ q: Query) {
        q.owner = self
        let box = Unmanaged.passRetained(q)
        var id: Int32 = 0
        let rc = Self.c(q.name) { ub_resolve_async(ctx, $0, q.type.rawValue, 1, box.toOpaque(), Resolver.callback, &id) }
        guard rc == 0 else {
            box.release()
            finish(q, .failure(.resolver(String(cString: ub_strerror(rc)))))
            return
        }
        q.asyncID = id
        pending[ObjectIdentifier(q)] = q
    }

    /// libunbound calls this from `ub_process`, on the resolver's thread; the query's retain is its own.
    private static let callback: ub_callback_type = { data, err, result in
        guard let data else {
            if let result { ub_resolve_free(result) }
            return
        }
        let q = Unmanaged<Query>.fromOpaque(data).takeRetainedValue()
        defer { if let result { ub_resolve_free(result) } }
        let answer = err != 0 ? DNSAnswer.failure(.resolver(String(cString: ub_strerror(err)))) : decode(result, type: q.type)
        if let owner = q.owner, let result {
            owner.keep(answer, q, ttl: Int(result.pointee.ttl))
        }
        q.owner?.answered(q, answer)
    }

    /// libunbound gives a negative answer the TTL of its zone's SOA, as it caches it itself.
    private func keep(_ answer: DNSAnswer, _ q: Query, ttl: Int) {
        let limit: Int
        switch answer {
        case .records: limit = Self.cacheMaxTTL
        case .nxdomain, .noData: limit = Self.cacheMaxNegativeTTL
        case .failure: return
        }
        let key = AnswerCache.Key(q.name, q.type)
        cacheLock.withLock { cache.keep(answer, for: key, ttl: min(max(0, ttl), limit), now: Self.now()) }
    }

    private func answered(_ q: Query, _ answer: DNSAnswer) {
        guard pending.removeValue(forKey: ObjectIdentifier(q)) != nil else { return }
        finish(q, answer)
    }

    private func expire(now: Double) {
        for q in pending.values where q.deadline <= now {
            pending[ObjectIdentifier(q)] = nil
            // Cancelled, the callback never comes: the retain taken at the start is given back here.
            if ub_cancel(ctx, q.asyncID) == 0 { Unmanaged.passUnretained(q).release() }
            finish(q, .failure(.timeout))
        }
    }

    private func finish(_ q: Query, _ answer: DNSAnswer) {
        lock.withLock { _inFlight -= 1 }
        observer?.observe(.dnsLookup(q.type, .init(answer), seconds: Self.now() - q.started))
        q.done(answer)
    }

    static func decode(_ result: UnsafeMutablePointer<ub_result>?, type: DNSType) -> DNSAnswer {
        guard let r = result?.pointee else { return .failure(.resolver("no result")) }
        if r.nxdomain != 0 { return .nxdomain }
        guard r.rcode == 0 else { return .failure(.serverFailure(rcode: Int(r.rcode))) }
        guard r.havedata != 0, let data = r.data, let lens = r.len else { return .noData }
        var records: [DNSRecord] = []
        var bad = 0
        var i = 0
        while i < maxRecords, let item = data[i] {
            let n = Int(lens[i])
            if n >= 0, n <= 65535, let rec = DNSRdata.decode(type, Array(UnsafeRawBufferPointer(start: item, count: n))) {
                records.append(rec)
            } else {
                bad += 1
            }
            i += 1
        }
        if records.isEmpty { return bad > 0 ? .failure(.malformed) : .noData }
        return .records(records, ttl: max(0, Int(r.ttl)))
    }

    // MARK: - Helpers

    /// libunbound's functions take `char*` for strings they only read.
    private static func c<T>(_ s: String, _ body: (UnsafeMutablePointer<CChar>) -> T) -> T {
        var bytes = Array(s.utf8CString)
        return bytes.withUnsafeMutableBufferPointer { body($0.baseAddress!) }
    }

    private func wake() {
        var b: UInt8 = 1
        _ = write(wakeWrite, &b, 1)
    }

    private func drainWake() {
        var buf = [UInt8](repeating: 0, count: 256)
        while read(wakeRead, &buf, buf.count) > 0 {}
    }

    private static func check(_ rc: Int32, _ what: String) throws {
        guard rc == 0 else { throw SetupError(description: "DNS resolver: \(what): \(String(cString: ub_strerror(rc)))") }
    }

    private static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }
}
