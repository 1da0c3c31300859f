/// A configuration file as a whole: the options before the first section (the daemon's, and every
/// section's defaults) and the SMTP listeners and TCP forwards its sections make.
public struct ConfigFile: Sendable, Equatable {
    /// The options before the first section, as read (every section starts from a copy of it).
    public var global: Config
    /// In file order; a file without `[listener]` sections has the one named `main` made of the global options.
    public var listeners: [ListenerSection]
    public var forwards: [ForwardSection]
    /// Whether the file has sections at all (`check-config` prints a file without them as it always has).
    public var sectioned: Bool

    public init(global: Config, listeners: [ListenerSection], forwards: [ForwardSection] = [], sectioned: Bool = false) {
        self.global = global
        self.listeners = listeners
        self.forwards = forwards
        self.sectioned = sectioned
    }

    /// The name the listener of a file without sections has.
    public static let mainListener = "main"

    /// Every listener's and forward's effective options, for what is shared across them (maps, DNS, scanners).
    public var configs: [Config] { listeners.map(\.config) + forwards.map(\.config) }

    /// Whether any listener locks or limits (or `state_store` is set): the daemon then keeps the tables.
    public var abuseControl: Bool { global.abuseControl || listeners.contains { $0.config.abuseControl } }

    public func listener(named name: String) -> ListenerSection? { listeners.first { $0.name == name } }
}

/// One `[listener NAME]` section (or the implicit `main`) with its effective options.
public struct ListenerSection: Sendable, Equatable {
    public var name: String
    public var config: Config
    /// The section header's line; nil for the implicit `main`.
    public var line: Int?

    public init(name: String, config: Config, line: Int? = nil) {
        self.name = name
        self.config = config
        self.line = line
    }
}

/// One `[forward NAME]` section: plain TCP relayed to its destination, with rinetd's allow/deny rules
/// (`config.forwardRules`, the global ones included).
public struct ForwardSection: Sendable, Equatable {
    public var name: String
    public var config: Config
    public var line: Int?
    /// The listening ports (`port`, one or a range).
    public var ports: PortRange
    /// `fixed_server_port`: one port, or a range as long as `ports`, mapped one to one.
    public var targetPorts: PortRange

    public init(name: String, config: Config, line: Int? = nil, ports: PortRange, targetPorts: PortRange) {
        self.name = name
        self.config = config
        self.line = line
        self.ports = ports
        self.targetPorts = targetPorts
    }

    /// Where a connection to listening port `port` goes in mode fixed.
    public func targetPort(for port: Int) -> Int {
        targetPorts.count == 1 ? targetPorts.lower : ports.mapped(port, onto: targetPorts) ?? targetPorts.lower
    }

    public var warnings: [String] { config.forwardRules.warnings(forward: name) }
}
