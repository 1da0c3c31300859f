/// The running daemon as `smtpgate status` shows it: who it is, its listeners with their open sessions,
/// the session table, and abuse control's tables when it is on.
public struct DaemonStatus: Sendable, Equatable {
    public struct Listener: Sendable, Equatable {
        public var name: String
        public var kind: SessionSnapshot.Kind
        /// `ADDR:PORT` or `ADDR:FIRST-LAST`.
        public var address: String
        public var mode: String
        /// Open now.
        public var sessions: Int
        public var counts: ListenerCounts

        public init(name: String, kind: SessionSnapshot.Kind, address: String, mode: String, sessions: Int,
                    counts: ListenerCounts = .init()) {
            self.counts = counts
            self.name = name
            self.kind = kind
            self.address = address
            self.mode = mode
            self.sessions = sessions
        }
    }

    /// A counter family summed over its series, as `/metrics` has it.
    public struct Counter: Sendable, Equatable {
        public var name: String
        public var value: Double

        public init(name: String, value: Double) {
            self.name = name
            self.value = value
        }
    }

    public var version: String
    public var pid: Int
    /// Unix time of the start.
    public var started: Double
    public var uptime: Double
    public var configFile: String
    public var listeners: [Listener]
    /// At most `DaemonStatus.maxSessions`, oldest first; `sessionsOmitted` says how many more are open.
    public var sessions: [SessionSnapshot]
    public var sessionsOmitted: Int
    /// nil when abuse control is off.
    public var locks: Int?
    public var trackedClients: Int?
    /// Every counter family of the daemon's metrics with its total, in `MetricFamily` order.
    public var counters: [Counter]

    /// A status answer lists at most this many sessions (about 3 MB of lines): a daemon with more open
    /// answers in bounded time and memory, and says how many it left out.
    public static let maxSessions = 20_000

    public init(version: String, pid: Int, started: Double, uptime: Double, configFile: String, listeners: [Listener],
                sessions: [SessionSnapshot], sessionsOmitted: Int = 0, locks: Int? = nil, trackedClients: Int? = nil,
                counters: [Counter] = []) {
        self.counters = counters
        self.version = version
        self.pid = pid
        self.started = started
        self.uptime = uptime
        self.configFile = configFile
        self.listeners = listeners
        self.sessions = sessions
        self.sessionsOmitted = sessionsOmitted
        self.locks = locks
        self.trackedClients = trackedClients
    }
}

extension DaemonStatus {
    /// The answer's record lines, in the order `init(replies:)` reads them.
    public var replies: [ControlReply] {
        [.daemon(self)] + counters.map(ControlReply.total) + listeners.map(ControlReply.listener)
            + sessions.map(ControlReply.session)
    }

    /// A status answer read back; nil when it does not start with the `daemon` line.
    public init?(replies: [ControlReply]) {
        guard case .daemon(let d)? = replies.first else { return nil }
        self = d
        for r in replies.dropFirst() {
            switch r {
            case .total(let c): counters.append(c)
            case .listener(let l): listeners.append(l)
            case .session(let s): sessions.append(s)
            default: return nil
            }
        }
    }
}
