/// Whether the open-files limit can serve `max_connections` sessions at once. An estimate on the safe
/// side, from what the daemon holds once it listens and what each session and scan can add to it, so
/// that a limit too low is said at start rather than found out as refused connections at the busiest hour.
public struct DescriptorBudget: Sendable, Equatable {
    public var maxConnections: Int
    /// The soft RLIMIT_NOFILE in force.
    public var limit: Int
    /// Descriptors `maxConnections` sessions can need at once, with the daemon's own.
    public var needed: Int
    /// Sessions the limit can serve at once.
    public var fits: Int

    /// A reload that reads the configuration and its key file, log rotation: descriptors open for a moment.
    static let transient = 8

    public init(maxConnections: Int, limit: Int, needed: Int, fits: Int) {
        self.maxConnections = maxConnections
        self.limit = limit
        self.needed = needed
        self.fits = fits
    }

    /// The shortfall, or nil when the limit suffices or `max_connections` is 0 (no limit to check).
    /// `inUse` is what the daemon holds once it listens (standard streams, log, event loops, listening
    /// sockets and their spares); `maxScans` the limit in force, which only a restart changes.
    public static func shortfall(_ config: Config, maxScans: Int, limit: Int, inUse: Int, loops: Int) -> DescriptorBudget? {
        shortfall([config], maxScans: maxScans, limit: limit, inUse: inUse, loops: loops)
    }

    /// The same for several listeners, whose sessions can all be open at once.
    public static func shortfall(_ configs: [Config], maxScans: Int, limit: Int, inUse: Int, loops: Int) -> DescriptorBudget? {
        let limited = configs.filter { $0.maxConnections > 0 }
        guard !limited.isEmpty else { return nil }
        let scanning = limited.contains { $0.scans }
        // Each running scan: the scanner connection and a reader of the spool file.
        let scans = scanning ? 2 * maxScans : 0
        // One helper socket per event loop, opened on first use.
        let helpers = limited.contains { $0.mode == .remoteUDP } ? loops : 0
        let fixed = inUse + scans + helpers + transient
        // Client and upstream; with a scanner also the spool file of a message larger than spool_memory.
        let sessions = limited.reduce(0) { $0 + ($1.scans ? 3 : 2) * $1.maxConnections }
        let total = limited.reduce(0) { $0 + $1.maxConnections }
        let needed = fixed + sessions
        guard needed > limit else { return nil }
        let perSession = scanning ? 3 : 2
        return DescriptorBudget(maxConnections: total, limit: limit, needed: needed,
                                fits: max(0, limit - fixed) / perSession)
    }
}
