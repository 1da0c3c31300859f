import NIOCore
import SMTPGateCore

/// The scanners of one daemon configuration, shared by its sessions.
struct ScanServices {
    let antivirus: ScannerEndpoint?
    let antispam: ScannerEndpoint?
    let scanMaxSize: Int
    let spamMaxSize: Int
    let timeoutScanner: TimeAmount
    let timeoutSpam: TimeAmount
    let policy: ScanPolicy
    let limiter: ScanLimiter
    /// `spam_max_load` (0: off) and the load it is checked against.
    let spamMaxLoad: Double
    let load: @Sendable () -> Double?

    init?(config: Config, limiter: ScanLimiter, load: @escaping @Sendable () -> Double? = { nil }) {
        guard config.scans else { return nil }
        antivirus = config.antivirusType == .clamd ? ScannerEndpoint(config.antivirusPath) : nil
        antispam = config.antispamType == .spamassassin ? ScannerEndpoint(config.antispamPath) : nil
        scanMaxSize = config.scanMaxSize
        spamMaxSize = config.spamMaxSize
        timeoutScanner = .nanoseconds(Int64(config.timeoutScanner * 1e9))
        timeoutSpam = .nanoseconds(Int64(config.timeoutSpam * 1e9))
        policy = ScanPolicy(config: config)
        self.limiter = limiter
        spamMaxLoad = config.spamMaxLoad
        self.load = load
    }

    /// Every configured scanner on the message at once; a message over a scanner's size bound is skipped
    /// by that scanner. Never fails: a scanner's failure is its report.
    /// `abandoned` says the session is gone: a scan still waiting for a slot is then not started.
    func scan(_ message: MessageSource, on loop: EventLoop, abandoned: @escaping () -> Bool) -> EventLoopFuture<[ScanReport]> {
        var runs: [EventLoopFuture<ScanReport>] = []
        if let antivirus {
            runs.append(run(.clamd, message, maxSize: scanMaxSize, option: "scan_max_size", timeout: timeoutScanner,
                            on: loop, abandoned: abandoned) { left in
                ClamdClient.scan(message, at: antivirus, timeout: left, on: loop)
            })
        }
        if antispam != nil, let why = spamSkipped() {
            runs.append(loop.makeSucceededFuture(ScanReport(scanner: .spamd, result: .skipped(why), seconds: 0, size: message.size)))
        } else if let antispam {
            runs.append(run(.spamd, message, maxSize: spamMaxSize, option: "spam_max_size", timeout: timeoutSpam,
                            on: loop, abandoned: abandoned) { left in
                SpamdClient.scan(message, at: antispam, timeout: left, on: loop)
            })
        }
        return EventLoopFuture.whenAllSucceed(runs, on: loop)
    }

    /// Why spamd is not asked now (`spam_max_load`): a loaded host skips the costly scanner first, as
    /// smtp-gated does; the virus scan still runs.
    func spamSkipped() -> String? {
        guard spamMaxLoad > 0, let now = load(), now > spamMaxLoad else { return nil }
        return "load \(now) above spam_max_load \(spamMaxLoad)"
    }

    /// The scanner's timeout runs from the moment the scan is asked for, so waiting for a slot counts too.
    private func run(_ scanner: ScanReport.Scanner, _ message: MessageSource, maxSize: Int, option: String,
                     timeout: TimeAmount, on loop: EventLoop, abandoned: @escaping () -> Bool,
                     _ work: @escaping (TimeAmount) -> EventLoopFuture<ScanReport>) -> EventLoopFuture<ScanReport> {
        func report(_ result: ScanReport.Result, seconds: Double = 0) -> EventLoopFuture<ScanReport> {
            loop.makeSucceededFuture(ScanReport(scanner: scanner, result: result, seconds: seconds, size: message.size))
        }
        if message.size > maxSize { return report(.skipped("larger than \(option) \(maxSize)")) }
        let deadline = NIODeadline.now() + timeout
        return limiter.run(on: loop) {
            let left = deadline - .now()
            if abandoned() { return report(.failed("the session ended")) }
            guard left > .zero else {
                return report(.failed("timed out waiting for a free slot (max_scans)"), seconds: Double(timeout.nanoseconds) / 1e9)
            }
            return work(left)
        }
    }
}
