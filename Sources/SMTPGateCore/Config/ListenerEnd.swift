/// What a listener's sockets are made for: a reload that changes any of it needs new sockets.
public struct ListenerEnd: Sendable, Equatable {
    public enum Kind: String, Sendable { case smtp, forward }

    public var kind: Kind
    public var address: IPAddress
    public var ports: ClosedRange<Int>
    public var mode: Config.Mode?
    public var backlog: Int

    public init(kind: Kind, config: Config, ports: ClosedRange<Int>? = nil) {
        self.kind = kind
        address = config.bindAddress
        self.ports = ports ?? config.port...config.port
        mode = config.mode
        backlog = config.connectQueue
    }

    public init(_ listener: ListenerSection) {
        self.init(kind: .smtp, config: listener.config)
    }

    public init(_ forward: ForwardSection) {
        self.init(kind: .forward, config: forward.config, ports: forward.ports.lower...forward.ports.upper)
    }

    /// `ADDR:PORT` or `ADDR:FIRST-LAST` for the log.
    public var text: String {
        ports.count == 1 ? address.withPort(ports.lowerBound) : address.withPort(ports.lowerBound) + "-\(ports.upperBound)"
    }

    /// Every listening end of a file, by name, in file order (listeners, then forwards).
    public static func all(_ file: ConfigFile) -> [(name: String, end: ListenerEnd)] {
        file.listeners.map { ($0.name, ListenerEnd($0)) } + file.forwards.map { ($0.name, ListenerEnd($0)) }
    }
}

/// What a reload does with each listener: the running ones against the new file's, by name.
public enum ListenerPlan: Equatable, Sendable {
    /// Same sockets: only the options are swapped (new sessions get them).
    case keep(String)
    /// New in the file: bound.
    case add(String)
    /// Same name, other sockets: new ones bound, the old one stops accepting and drains.
    case rebind(String)
    /// Gone from the file: stops accepting, its sessions drain.
    case remove(String)

    /// The steps, the new file's names in its order first, then the removed ones in the old order.
    public static func diff(running: [(name: String, end: ListenerEnd)], next: [(name: String, end: ListenerEnd)]) -> [ListenerPlan] {
        var out: [ListenerPlan] = []
        for n in next {
            guard let old = running.first(where: { $0.name == n.name }) else {
                out.append(.add(n.name))
                continue
            }
            out.append(old.end == n.end ? .keep(n.name) : .rebind(n.name))
        }
        for r in running where !next.contains(where: { $0.name == r.name }) { out.append(.remove(r.name)) }
        return out
    }
}
