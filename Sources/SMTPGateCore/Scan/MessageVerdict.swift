/// What happens to a finished message once its scans are in.
public enum MessageVerdict: Sendable, Equatable {
    /// The final dot goes to the MTA; its reply goes to the client.
    case deliver
    /// 550 5.7.1: the MTA never sees the dot.
    case virus(String)
    case spam(score: Double, threshold: Double)
    /// 451 4.3.0: a failure of ours (scanner or spool), so the client keeps the message and retries.
    case notScanned(String, spool: Bool)
}

/// The scan result a transaction's log line carries.
public struct ScanSummary: Sendable, Equatable {
    public enum Result: String, Sendable {
        case clean, virus, spam, error, skipped
    }

    public var result: Result
    public var virus: String?
    public var score: Double?

    public init(result: Result, virus: String? = nil, score: Double? = nil) {
        self.result = result
        self.virus = virus
        self.score = score
    }
}

/// The scanning settings the verdict depends on.
public struct ScanPolicy: Sendable {
    public var spamThreshold: Double
    public var rejectSpam: Bool
    public var ignoreErrors: Bool

    public init(spamThreshold: Double, rejectSpam: Bool, ignoreErrors: Bool) {
        self.spamThreshold = spamThreshold
        self.rejectSpam = rejectSpam
        self.ignoreErrors = ignoreErrors
    }

    public init(config: Config) {
        self.init(spamThreshold: config.spamThreshold, rejectSpam: config.spamAction == .reject,
                  ignoreErrors: config.ignoreErrors)
    }

    public func isSpam(_ score: Double) -> Bool { score >= spamThreshold }

    /// A virus outranks spam, spam outranks a failure: what was found is reported even when another scanner
    /// failed. A failure stops the message unless `ignore_errors` is on.
    public func verdict(_ reports: [ScanReport]) -> (MessageVerdict, ScanSummary) {
        for r in reports {
            if case .virus(let name) = r.result {
                return (.virus(name), ScanSummary(result: .virus, virus: name))
            }
        }
        var score: Double?
        for r in reports {
            if case .score(let s) = r.result { score = s }
        }
        if let score, isSpam(score) {
            let summary = ScanSummary(result: .spam, score: score)
            return (rejectSpam ? .spam(score: score, threshold: spamThreshold) : .deliver, summary)
        }
        for r in reports {
            if case .failed(let why) = r.result {
                let summary = ScanSummary(result: .error, score: score)
                return (ignoreErrors ? .deliver : .notScanned("\(r.scanner.rawValue): \(why)", spool: false), summary)
            }
        }
        let skippedAll = !reports.isEmpty && reports.allSatisfy {
            if case .skipped = $0.result { return true }
            return false
        }
        return (.deliver, ScanSummary(result: skippedAll ? .skipped : .clean, score: score))
    }
}
