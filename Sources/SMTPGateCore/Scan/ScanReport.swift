/// What one scanner said about one message. Text in it came from the scanner and is already made safe
/// for a log line and an SMTP reply (printable ASCII, bounded length).
public struct ScanReport: Sendable, Equatable {
    public enum Scanner: String, Sendable {
        case clamd
        case spamd
    }

    public enum Result: Sendable, Equatable {
        case clean
        /// clamd found something; the signature name.
        case virus(String)
        /// spamd's score; the verdict against `spam_threshold` is the policy's, not spamd's.
        case score(Double)
        /// Not scanned on purpose (larger than `scan_max_size` / `spam_max_size`).
        case skipped(String)
        /// The scanner could not give an answer: down, too slow, or it said something unusable.
        case failed(String)
    }

    public var scanner: Scanner
    public var result: Result
    /// Wall time from the request to the answer (or the failure).
    public var seconds: Double
    /// Bytes of the message the scanner was given.
    public var size: Int

    public init(scanner: Scanner, result: Result, seconds: Double, size: Int) {
        self.scanner = scanner
        self.result = result
        self.seconds = seconds
        self.size = size
    }
}
