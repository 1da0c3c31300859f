/// What `smtpgate locks …`, `status`, `reload` and `stop` ask the running daemon over its control socket:
/// one line, tab-separated, at most `maxLine` bytes. Pure parsing, so the daemon's side is tested without a socket.
public enum ControlRequest: Sendable, Equatable {
    /// The live view: the daemon, its listeners, the session table.
    case status
    /// As SIGHUP: the answer says whether the new file was taken.
    case reload
    /// As SIGTERM: answered before the drain begins.
    case stop
    case listLocks
    /// `seconds` nil: until removed.
    case addLock(key: String, seconds: Int?, reason: String)
    case removeLock(key: String)
    case show(key: String)

    public static let maxLine = 4096

    public enum ParseError: Error, Equatable, CustomStringConvertible {
        case tooLong, unknown(String), malformed(String)

        public var description: String {
            switch self {
            case .tooLong: return "request longer than \(ControlRequest.maxLine) bytes"
            case .unknown(let v): return "unknown request \(CIDR.ParseError.show(v))"
            case .malformed(let v): return "malformed request \(CIDR.ParseError.show(v))"
            }
        }
    }

    public var line: String {
        switch self {
        case .status: return "status"
        case .reload: return "reload"
        case .stop: return "stop"
        case .listLocks: return "locks\tlist"
        case .addLock(let key, let seconds, let reason):
            return "locks\tadd\t\(ControlField.clean(key))\t\(seconds.map(String.init) ?? "-")\t\(ControlField.clean(reason))"
        case .removeLock(let key): return "locks\tremove\t\(ControlField.clean(key))"
        case .show(let key): return "locks\tshow\t\(ControlField.clean(key))"
        }
    }

    public init(parsing bytes: [UInt8]) throws(ParseError) {
        guard bytes.count <= Self.maxLine else { throw .tooLong }
        let text = String(decoding: bytes, as: UTF8.self)
        switch text {
        case "status": self = .status; return
        case "reload": self = .reload; return
        case "stop": self = .stop; return
        default: break
        }
        let f = text.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
        guard f.count >= 2, f[0] == "locks" else { throw .unknown(text) }
        switch (f[1], f.count) {
        case ("list", 2): self = .listLocks
        case ("remove", 3): self = .removeLock(key: f[2])
        case ("show", 3): self = .show(key: f[2])
        case ("add", 5):
            if f[3] == "-" {
                self = .addLock(key: f[2], seconds: nil, reason: f[4])
            } else if let n = Int(f[3]), n > 0, n <= 366 * 86400 {
                self = .addLock(key: f[2], seconds: n, reason: f[4])
            } else {
                throw .malformed(text)
            }
        default: throw .unknown(text)
        }
    }
}

/// Text put into a tab-separated control line: tabs and line ends would split it, so they become spaces.
public enum ControlField {
    public static func clean(_ s: String) -> String {
        String(s.unicodeScalars.prefix(1024).map { $0 == "\t" || $0 == "\n" || $0 == "\r" ? " " : Character($0) })
    }
}
