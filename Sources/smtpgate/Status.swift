import ArgumentParser
import Foundation
import SMTPGateCore
import SMTPGateProxy

/// The control socket's commands besides `locks`: the daemon named by the configuration's `control_path`.
struct ControlOptions: ParsableArguments {
    @Option(name: .long, help: "Configuration file (names control_path).")
    var config = "/etc/smtpgate/smtpgate.conf"

    /// Only `control_path` is read, from the options before the first section, so that `reload` can
    /// report what is wrong with a file the daemon refuses (the daemon reads it, not this command).
    func controlPath() throws -> String {
        guard let text = try? String(contentsOfFile: config, encoding: .utf8) else {
            FileHandleErr.print("smtpgate: cannot read \(config)")
            throw ExitCode(1)
        }
        for raw in text.split(separator: "\n", omittingEmptySubsequences: false).prefix(100_000) {
            let line = raw.drop { $0 == " " || $0 == "\t" }
            if line.hasPrefix("[") { break }
            let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" })
            if words.count >= 2, words[0] == "control_path" { return words[1...].joined(separator: " ") }
        }
        return Config().controlPath
    }
}

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The running daemon: its listeners, open sessions and abuse-control tables.")
    @OptionGroup var control: ControlOptions
    @Flag(name: .long, help: "One JSON object instead of tables.") var json = false

    func run() throws {
        let path = try control.controlPath()
        let status = try adminFail { () throws(DaemonAdmin.Failure) in try DaemonAdmin.status(controlPath: path) }
        print(json ? StatusReport.json(status) : StatusReport.text(status), terminator: json ? "\n" : "")
    }
}

struct Reload: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Reads the configuration again, as SIGHUP does; fails with the reason when it is kept.")
    @OptionGroup var control: ControlOptions

    func run() throws {
        let path = try control.controlPath()
        try adminFail { () throws(DaemonAdmin.Failure) in try DaemonAdmin.reload(controlPath: path) }
        print("reloaded")
    }
}

struct Stop: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Stops the daemon as SIGTERM does: open sessions get shutdown_timeout to finish.")
    @OptionGroup var control: ControlOptions

    func run() throws {
        let path = try control.controlPath()
        try adminFail { () throws(DaemonAdmin.Failure) in try DaemonAdmin.stop(controlPath: path) }
        print("stopping")
    }
}

/// A control failure is one line on stderr and exit code 1.
@discardableResult
func adminFail<T>(_ body: () throws(DaemonAdmin.Failure) -> T) throws -> T {
    do {
        return try body()
    } catch {
        FileHandleErr.print("smtpgate: \(error)")
        throw ExitCode(1)
    }
}
