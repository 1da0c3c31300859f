import ArgumentParser
import SMTPGateCore
import SMTPGateHelper
import SMTPGateRuntime

#if canImport(Glibc)
import Glibc
#endif

struct SMTPGateHelperCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "smtpgate-helper",
        abstract: "NAT lookup helper: answers SMTPGate proxies' conntrack queries over UDP.",
        discussion: """
            Answers version 2 queries (HMAC-SHA256) iff --key-file is given and 0x0402 queries iff
            --legacy-secret is given; at least one is required. Only sources inside an --allow prefix are
            answered. Needs CAP_NET_ADMIN. SIGUSR1 logs the counters; SIGHUP reopens --log-file;
            SIGTERM/SIGINT stop. See smtpgate-helper(8).
            """,
        version: "smtpgate-helper \(HelperDaemon.version)"
    )

    @Option(name: .long, help: ArgumentHelp("Address to answer on: ADDR, ADDR:PORT, [IPV6]:PORT or a bare IPv6 address (port 114). Repeatable.", valueName: "addr[:port]"))
    var listen: [String] = []

    @Option(name: .long, help: ArgumentHelp("Proxy addresses to answer, as a CIDR prefix or an address. Repeatable.", valueName: "cidr"))
    var allow: [String] = []

    @Option(name: .long, help: ArgumentHelp("Version 2 key file (at least 16 bytes, mode 0600 or stricter).", valueName: "file"))
    var keyFile: String?

    @Option(name: .long, help: ArgumentHelp("Answer 0x0402 queries carrying this secret (0 = queries without a secret).", valueName: "n"))
    var legacySecret: String?

    @Option(name: .long, help: ArgumentHelp("Log format: text or json.", valueName: "text|json"))
    var logFormat: String = "text"

    @Option(name: .long, help: ArgumentHelp("Append log lines to this file instead of stderr.", valueName: "path"))
    var logFile: String?

    @Option(name: .long, help: ArgumentHelp("Bytes of log lines held for a log reader that does not keep up; past them lines are dropped and counted.", valueName: "bytes"))
    var logQueue: Int = LogSink.defaultQueueBytes

    @Option(name: .long, help: ArgumentHelp("Version 2 timestamp window, seconds: how far a query's clock may be from ours.", valueName: "seconds"))
    var window: Int = 30

    @Option(name: .long, help: ArgumentHelp("Version 2 nonces remembered against replay (about 40 bytes each); the sustainable v2 rate is about this divided by --window, per second.", valueName: "n"))
    var replayCache: Int = HelperPolicy.defaultReplayCapacity

    @Option(name: .long, help: ArgumentHelp("Serve /metrics (Prometheus) and /healthz over HTTP here: ADDRESS:PORT, a literal address.", valueName: "addr:port"))
    var adminListen: String?

    @Option(name: .long, help: ArgumentHelp("Who may use --admin-listen, as a CIDR prefix or an address (default: loopback). Repeatable.", valueName: "cidr"))
    var adminAllow: [String] = []

    func run() throws {
        do {
            guard let format = LogFormat(rawValue: logFormat) else {
                throw HelperError("--log-format must be text or json, not \(logFormat)")
            }
            guard LogSink.queueBytesRange.contains(logQueue) else {
                throw HelperError("--log-queue must be \(LogSink.queueBytesRange.lowerBound) to \(LogSink.queueBytesRange.upperBound) bytes, not \(logQueue)")
            }
            let configuration = try HelperOptions.configuration(
                listen: listen, allow: allow, keyFile: keyFile, legacySecret: legacySecret, replayCache: replayCache,
                window: window)
            let lookup = ConntrackLookup()
            do {
                try lookup.probe()
            } catch {
                throw HelperError("cannot query conntrack: \(error) (needs CAP_NET_ADMIN and nf_conntrack_netlink)")
            }
            let sink = try LogSink(format: format, path: logFile, program: "smtpgate-helper", queueBytes: logQueue)
            defer { sink.flush() }
            if adminListen == nil, !adminAllow.isEmpty { throw HelperError("--admin-allow needs --admin-listen") }
            let metrics = adminListen == nil ? nil : HelperMetrics(version: HelperDaemon.version)
            let server = HelperServer(configuration: configuration, lookup: lookup, log: { sink.emit($0) }, metrics: metrics)
            var admin: HelperAdmin?
            if let adminListen, let metrics { admin = try HelperAdmin(endpoint: adminListen, allow: adminAllow, metrics: metrics) }
            defer { admin?.stop() }
            if let admin { sink.emit(LogRecord(.info, "admin_listen", [("address", .text(admin.address))])) }
            let daemon = HelperDaemon(server: server, log: { sink.emit($0) }, reopenLog: {
                do {
                    try sink.reopen()
                } catch {
                    sink.emit(LogRecord(.error, "reopen_log", [("error", .text(LogEscape.escape("\(error)")))]))
                }
            })
            try daemon.run()
        } catch {
            Stderr.print("smtpgate-helper: \(error)")
            throw ExitCode(1)
        }
    }
}

enum Stderr {
    static func print(_ s: String) {
        let line = s + "\n"
        _ = line.withCString { write(STDERR_FILENO, $0, strlen($0)) }
    }
}

// Every start-up failure exits 1, usage errors included (ArgumentParser's own would be 64);
// --help and --version still exit 0.
do {
    var command = try SMTPGateHelperCommand.parseAsRoot()
    try command.run()
} catch let code as ExitCode {
    exit(code.rawValue)
} catch {
    if SMTPGateHelperCommand.exitCode(for: error) == .success { SMTPGateHelperCommand.exit(withError: error) }
    Stderr.print(SMTPGateHelperCommand.fullMessage(for: error))
    exit(1)
}
