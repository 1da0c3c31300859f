import ArgumentParser
import SMTPGateCore
import SMTPGateRuntime
import SMTPGateProxy

#if canImport(Glibc)
import Glibc
#endif

struct SMTPGate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "smtpgate",
        abstract: "Transparent SMTP interception proxy.",
        version: "smtpgate \(Daemon.version)",
        subcommands: [Run.self, CheckConfig.self, ImportRinetd.self, Status.self, Reload.self, Stop.self, Locks.self, Version.self]
    )
}

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the proxy in the foreground.")

    @Option(name: .long, help: "Configuration file.")
    var config: String

    @Option(name: .long, help: "Log format: text or json.")
    var logFormat: String = "text"

    @Option(name: .long, help: "Append log lines to this file instead of stderr.")
    var logFile: String?

    @Option(name: .long, help: "Bytes of log lines held for a log reader that does not keep up; past them lines are dropped and counted.")
    var logQueue: Int = LogSink.defaultQueueBytes

    @Flag(name: .long, help: "Send log lines to syslog (log_facility, log_level) instead of stderr.")
    var syslog = false

    @Option(name: .long, help: "The syslog socket (a unix datagram socket).")
    var syslogSocket = "/dev/log"

    @Option(name: .long, help: "Syslog message format: rfc3164 (as syslog(3) sends) or rfc5424.")
    var syslogFormat = "rfc3164"

    func run() throws {
        guard let format = LogFormat(rawValue: logFormat) else {
            throw ValidationError("--log-format must be text or json")
        }
        guard let syslogFormat = SyslogFormat(rawValue: syslogFormat) else {
            throw ValidationError("--syslog-format must be rfc3164 or rfc5424")
        }
        if syslog, logFile != nil { throw ValidationError("--syslog and --log-file exclude each other") }
        if syslog, logFormat != "text" { throw ValidationError("--syslog sends text lines: leave out --log-format") }
        guard LogSink.queueBytesRange.contains(logQueue) else {
            throw ValidationError("--log-queue must be \(LogSink.queueBytesRange.lowerBound) to \(LogSink.queueBytesRange.upperBound) bytes")
        }
        let cfg: Daemon.LoadedConfig
        switch Daemon.load(config) {
        case .success(let c): cfg = c
        case .failure(let e):
            FileHandleErr.print("smtpgate: \(e)")
            throw ExitCode(1)
        }
        let problems = HostChecks.problems(cfg.file)
        guard problems.isEmpty else {
            for p in problems { FileHandleErr.print("smtpgate: \(config): \(p)") }
            throw ExitCode(1)
        }
        let sink: LogSink
        do {
            let c = cfg.config
            sink = syslog
                ? try LogSink(syslog: syslogSocket, format: syslogFormat, facility: c.logFacility, program: "smtpgate",
                              queueBytes: logQueue, maxRank: c.logLevel)
                : try LogSink(format: format, path: logFile, program: "smtpgate", queueBytes: logQueue, maxRank: c.logLevel)
        } catch {
            FileHandleErr.print("smtpgate: \(error)")
            throw ExitCode(1)
        }
        do {
            try Daemon(configPath: config, loaded: cfg, sink: sink).run()
        } catch {
            sink.flush()
            FileHandleErr.print("smtpgate: \(error)")
            throw ExitCode(1)
        }
    }
}

struct CheckConfig: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-config",
        abstract: "Validate a configuration file and print the effective configuration.")

    @Argument(help: "Configuration file.")
    var file: String

    func run() throws {
        switch Daemon.load(file) {
        case .success(let loaded):
            for w in ConfigParser.warnings(loaded.file) { FileHandleErr.print("\(file): warning: \(w)") }
            for w in loaded.maps.warnings { FileHandleErr.print("warning: \(w)") }
            // Valid, but `run` would refuse it here: every such problem, and no configuration printed.
            let problems = HostChecks.problems(loaded.file)
            guard problems.isEmpty else {
                for p in problems { FileHandleErr.print("\(file): \(p)") }
                throw ExitCode(1)
            }
            print(ConfigParser.render(loaded.file), terminator: "")
        case .failure(let e):
            // A file that does not parse is reported whole, every error with its line.
            let text = (try? Daemon.readFile(file, limit: Daemon.maxConfigBytes).get()).flatMap { String(validating: $0, as: UTF8.self) }
            let all = text.map { ConfigParser.errors($0, file: file) } ?? []
            for error in all.isEmpty ? [e] : all { FileHandleErr.print("\(error)") }
            throw ExitCode(1)
        }
    }
}

struct ImportRinetd: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import-rinetd",
        abstract: "Print the SMTPGate configuration equivalent to a rinetd.conf.")

    @Argument(help: "rinetd configuration file.")
    var file: String

    func run() throws {
        do {
            let bytes = try Daemon.readFile(file, limit: RinetdImport.maxFileBytes).get()
            guard let text = String(validating: bytes, as: UTF8.self) else {
                throw ConfigError(file: file, line: nil, message: "file is not valid UTF-8 text")
            }
            print(try RinetdImport.translate(text, file: file), terminator: "")
        } catch {
            FileHandleErr.print("\(error)")
            throw ExitCode(1)
        }
    }
}

struct Version: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print the version.")
    func run() { print("smtpgate \(Daemon.version)") }
}

enum FileHandleErr {
    static func print(_ s: String) {
        let line = s + "\n"
        _ = line.withCString { write(STDERR_FILENO, $0, strlen($0)) }
    }
}

SMTPGate.main()
