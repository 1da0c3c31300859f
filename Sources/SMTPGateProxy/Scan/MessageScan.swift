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

    init?(config: Config, limiter: ScanLimiter) {
        guard config.scans else { return nil }
        antivirus = config.antivirusType == .clamd ? ScannerEndpoint(config.antivirusPath) : nil
        antispam = config.antispamType == .spamassassin ? ScannerEndpoint(config.antispamPath) : nil
        scanMaxSize = config.scanMaxSize
        spamMaxSize = config.spamMaxSize
        timeoutScanner = .nanoseconds(Int64(config.timeoutScanner * 1e9))
        timeoutSpam = .nanoseconds(Int64(config.timeoutSpam * 1e9))
        policy = ScanPolicy(config: config)
        self.limiter = limiter
    }

    /// Every configured scanner on the message at once; a message over a scanner's size bound is skipped
    /// by that scanner. Never fails: a scanner's failure is its report.
    func scan(_ message: MessageSource, on loop: EventLoop) -> EventLoopFuture<[ScanReport]> {
        var runs: [EventLoopFuture<ScanReport>] = []
        if let antivirus {
            runs.append(run(.clamd, message, maxSize: scanMaxSize, option: "scan_max_size", on: loop) {
                ClamdClient.scan(message, at: antivirus, timeout: timeoutScanner, on: loop)
            })
        }
        if let antispam {
            runs.append(run(.spamd, message, maxSize: spamMaxSize, option: "spam_max_size", on: loop) {
                SpamdClient.scan(message, at: antispam, timeout: timeoutSpam, on: loop)
            })
        }
        return EventLoopFuture.whenAllSucceed(runs, on: loop)
    }

    private func run(_ scanner: ScanReport.Scanner, _ message: MessageSource, maxSize: Int, option: String,
                     on loop: EventLoop, _ work: @escaping () -> EventLoopFuture<ScanReport>) -> EventLoopFuture<ScanReport> {
        if message.size > maxSize {
            return loop.makeSucceededFuture(ScanReport(
                scanner: scanner, result: .skipped("larger than \(option) \(maxSize)"), seconds: 0, size: message.size))
        }
        return limiter.run(on: loop, work)
    }
}
