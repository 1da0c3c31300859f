/// The daemon's answer on the control socket: record lines, then `ok` or `error<TAB>MESSAGE`.
public enum ControlReply: Sendable, Equatable {
    public struct LockEntry: Sendable, Equatable {
        public var key: String
        public var cause: String
        public var created: Double
        public var expires: Double?
        public var reason: String

        public init(key: String, cause: String, created: Double, expires: Double?, reason: String) {
            self.key = key
            self.cause = cause
            self.created = created
            self.expires = expires
            self.reason = reason
        }

        public init(_ l: ClientLock) {
            self.init(key: l.key.description, cause: l.cause.rawValue, created: l.created, expires: l.expires, reason: l.reason)
        }
    }

    public struct Counter: Sendable, Equatable {
        public var kind: String
        public var limit: Int
        public var seconds: Int
        public var count: Double

        public init(kind: String, limit: Int, seconds: Int, count: Double) {
            self.kind = kind
            self.limit = limit
            self.seconds = seconds
            self.count = count
        }
    }

    case lock(LockEntry)
    case counter(Counter)
    /// A status answer: one `daemon` line, then its listeners and sessions (`DaemonStatus.replies`).
    case daemon(DaemonStatus)
    /// A status answer's counter total (`smtpgate_sessions_total 17`).
    case total(DaemonStatus.Counter)
    case listener(DaemonStatus.Listener)
    case session(SessionSnapshot)
    case ok
    case error(String)

    /// A reply is at most this many record lines (a lock list of a big ISP fits; a runaway one does not).
    public static let maxRecords = 2_000_000

    public var line: String {
        switch self {
        case .lock(let l):
            return "lock\t\(ControlField.clean(l.key))\t\(l.cause)\t\(Self.number(l.created))\t\(l.expires.map(Self.number) ?? "-")\t\(ControlField.clean(l.reason))"
        case .counter(let c):
            return "counter\t\(c.kind)\t\(c.limit)\t\(c.seconds)\t\(Self.number(c.count))"
        case .daemon(let d):
            return ["daemon", ControlField.clean(d.version), String(d.pid), Self.number(d.started), Self.number(d.uptime * 1000),
                    ControlField.clean(d.configFile), String(d.sessionsOmitted), d.locks.map(String.init) ?? "",
                    d.trackedClients.map(String.init) ?? ""].joined(separator: "\t")
        case .total(let c):
            return "total\t\(ControlField.clean(c.name))\t\(Self.number(c.value))"
        case .listener(let l):
            let n = l.counts
            return ["listener", ControlField.clean(l.name), l.kind.rawValue, ControlField.clean(l.address),
                    ControlField.clean(l.mode), String(l.sessions), String(n.ended), String(n.refused), String(n.transactions),
                    String(n.bytesIn), String(n.bytesOut)].joined(separator: "\t")
        case .session(let s):
            return ["session", ControlField.clean(s.id), ControlField.clean(s.listener), s.kind.rawValue,
                    ControlField.clean(s.client), ControlField.clean(s.destination), ControlField.clean(s.state),
                    ControlField.clean(s.ident ?? ""), ControlField.clean(s.helo ?? ""), String(s.transactions),
                    String(s.bytesIn), String(s.bytesOut), Self.number(s.age * 1000)].joined(separator: "\t")
        case .ok: return "ok"
        case .error(let m): return "error\t\(ControlField.clean(m))"
        }
    }

    /// Whole seconds; a value no clock reaches (from a hand-edited or hostile store) is clamped, not trapped on.
    public static func number(_ d: Double) -> String {
        guard d.isFinite else { return "0" }
        return String(Int(min(max(d, -9e15), 9e15).rounded(.down)))
    }

    public init?(parsing text: Substring) {
        let f = text.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
        switch f.first {
        case "ok" where f.count == 1: self = .ok
        case "error" where f.count == 2: self = .error(f[1])
        case "lock" where f.count == 6:
            guard let created = Double(f[3]) else { return nil }
            let expires: Double?
            if f[4] == "-" { expires = nil } else {
                guard let e = Double(f[4]) else { return nil }
                expires = e
            }
            self = .lock(LockEntry(key: f[1], cause: f[2], created: created, expires: expires, reason: f[5]))
        case "daemon" where f.count == 9:
            guard let pid = Int(f[2]), let started = Double(f[3]), let uptime = Double(f[4]), let omitted = Int(f[6]),
                  f[7].isEmpty || Int(f[7]) != nil, f[8].isEmpty || Int(f[8]) != nil else { return nil }
            self = .daemon(DaemonStatus(version: f[1], pid: pid, started: started, uptime: uptime / 1000, configFile: f[5], listeners: [],
                                        sessions: [], sessionsOmitted: omitted, locks: Int(f[7]), trackedClients: Int(f[8])))
        case "total" where f.count == 3:
            guard let v = Double(f[2]), v.isFinite else { return nil }
            self = .total(DaemonStatus.Counter(name: f[1], value: v))
        case "listener" where f.count == 11:
            let numbers = f[5...].compactMap { Int($0) }
            guard let kind = SessionSnapshot.Kind(rawValue: f[2]), numbers.count == 6 else { return nil }
            let counts = ListenerCounts(ended: numbers[1], refused: numbers[2], transactions: numbers[3],
                                        bytesIn: numbers[4], bytesOut: numbers[5])
            self = .listener(DaemonStatus.Listener(name: f[1], kind: kind, address: f[3], mode: f[4], sessions: numbers[0],
                                                   counts: counts))
        case "session" where f.count == 13:
            guard let kind = SessionSnapshot.Kind(rawValue: f[3]), let trans = Int(f[9]), let bytesIn = Int(f[10]),
                  let bytesOut = Int(f[11]), let ms = Double(f[12]) else { return nil }
            self = .session(SessionSnapshot(id: f[1], listener: f[2], kind: kind, client: f[4], destination: f[5], state: f[6],
                                            ident: f[7].isEmpty ? nil : f[7], helo: f[8].isEmpty ? nil : f[8],
                                            transactions: trans, bytesIn: bytesIn, bytesOut: bytesOut, age: ms / 1000))
        case "counter" where f.count == 5:
            guard let limit = Int(f[2]), let seconds = Int(f[3]), let count = Double(f[4]) else { return nil }
            self = .counter(Counter(kind: f[1], limit: limit, seconds: seconds, count: count))
        default:
            return nil
        }
    }
}
