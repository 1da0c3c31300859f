/// The per-session settings the state machine needs, taken from the configuration when the session opens.
public struct SessionSettings: Sendable {
    public var proxyName: String
    public var pipelineSize: Int
    public var onTakeoverCmds: Int
    public var forbidStartTLS: Bool
    /// The configured `msg_*` texts.
    public var replyTexts: [ReplyText: ReplyTemplate] = [:]
    /// Largest message accepted (un-stuffed bytes); nil for no limit.
    public var sizeLimit: Int?
    /// A scanner is configured: each message is handed to the shell for its spool and the final dot waits
    /// for a `verdict`.
    public var holdFinalDot = false
    /// Longest command line kept whole for parsing; longer lines are relayed as a stream.
    public var maxCommandLine = 16 * 1024
    /// Most client bytes held while a barrier command (DATA, AUTH, STARTTLS) awaits its reply.
    public var holdLimit = 64 * 1024
    /// Most recipients relayed in one transaction (`max_recipients`); more get 452 from the proxy.
    public var maxRecipients = 1000
    /// A policy decides at the end of each message (locks): the final dot is held until it has.
    public var decideAtEndOfData = false

    /// The final dot waits, for the scanners or for a policy.
    var holdsDot: Bool { holdFinalDot || decideAtEndOfData }

    public init(proxyName: String, pipelineSize: Int, onTakeoverCmds: Int, forbidStartTLS: Bool) {
        self.proxyName = proxyName
        self.pipelineSize = pipelineSize
        self.onTakeoverCmds = onTakeoverCmds
        self.forbidStartTLS = forbidStartTLS
    }

    public init(config: Config, hostName: String) {
        self.init(proxyName: config.resolvedProxyName(hostName: hostName), pipelineSize: config.pipelineSize,
                  onTakeoverCmds: config.onTakeoverCmds, forbidStartTLS: config.forbidStartTLS)
        sizeLimit = config.sizeLimit > 0 ? config.sizeLimit : nil
        holdFinalDot = config.scans
        maxRecipients = config.maxRecipients
        replyTexts = config.replyTexts
    }
}
