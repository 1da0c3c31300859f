import ArgumentParser
import SMTPGateCore
import SMTPGateProxy

#if canImport(Glibc)
import Glibc
#endif

/// `smtpgate locks …`: the running daemon's locks (or the state store's, with the daemon down).
struct Locks: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List, add, remove, show or import client locks.",
        subcommands: [List.self, Add.self, Remove.self, Show.self, Import.self])

    struct Common: ParsableArguments {
        @Option(name: .long, help: "Configuration file (names control_path and state_store).")
        var config = "/etc/smtpgate/smtpgate.conf"

        func admin() throws -> LockAdmin {
            let file = try loadConfigFile(config)
            return LockAdmin(config: file.global, listeners: file.listeners)
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The locks in force.")
        @OptionGroup var common: Common
        @Flag(name: .long, help: "One JSON array instead of a table.") var json = false

        func run() throws {
            var admin = try common.admin()
            let locks = try fail { () throws(LockAdmin.Failure) in try admin.list() }
            if json {
                print("[" + locks.map(LocksOutput.json).joined(separator: ",\n ") + "]")
            } else {
                print(LocksOutput.table(locks), terminator: "")
            }
        }
    }

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Lock a client: ADDR, PREFIX/64 or IDENT@ADDR.")
        @OptionGroup var common: Common
        @Argument var address: String
        @Option(name: .customLong("for"), help: "Seconds (default: lock_duration; until removed when that is 0 or -1).")
        var seconds: Int?
        @Option(name: .long, help: "Why, for the log and the list.") var reason = ""

        func run() throws {
            let config = try loadConfig(common.config)
            if let seconds, !(1...(366 * 86400)).contains(seconds) {
                throw ValidationError("--for must be 1 to \(366 * 86400) seconds")
            }
            let duration = seconds ?? (config.lockDuration > 0 ? config.lockDuration : nil)
            var admin = LockAdmin(config: config)
            let lock = try fail { () throws(LockAdmin.Failure) in try admin.add(address, seconds: duration, reason: reason) }
            print("locked \(lock.key) \(LocksOutput.until(lock.expires))\(admin.viaDaemon ? "" : " (daemon not running: written to the state store)")")
        }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Unlock a client.")
        @OptionGroup var common: Common
        @Argument var address: String

        func run() throws {
            var admin = try common.admin()
            try fail { () throws(LockAdmin.Failure) in try admin.remove(address) }
            print("unlocked \(address)")
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "A client's lock and its rate counters.")
        @OptionGroup var common: Common
        @Argument var address: String

        func run() throws {
            var admin = try common.admin()
            let (lock, counters) = try fail { () throws(LockAdmin.Failure) in try admin.show(address) }
            print(lock.map { "lock \($0.cause) \(LocksOutput.until($0.expires)): \($0.reason)" } ?? "not locked")
            for c in counters {
                let count = (c.count * 10).rounded() / 10
                // A listener's own counters are stored as LISTENER/kind.
                let (listener, kind) = c.kind.lastIndex(of: "/").map { (String(c.kind[..<$0]), String(c.kind[c.kind.index(after: $0)...])) }
                    ?? ("", c.kind)
                print((listener.isEmpty ? "" : "[listener \(listener)] ") + "ratelimit_\(kind) \(count) of \(c.limit) in \(c.seconds) s")
            }
            if !admin.viaDaemon { print("(daemon not running: counters as last saved)") }
        }
    }

    struct Import: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Take over an smtp-gated lock directory.")
        @OptionGroup var common: Common
        @Argument(help: "smtp-gated's lock_path (default: lock_path from the configuration).") var directory: String?

        func run() throws {
            let config = try loadConfig(common.config)
            guard let dir = directory ?? config.lockPath else {
                throw ValidationError("give the directory, or set lock_path in \(common.config)")
            }
            let plan: LockImport.Plan
            do {
                plan = try LockImport.plan(directory: dir, config: config, now: Double(time(nil)))
            } catch {
                FileHandleErr.print("smtpgate: \(error)")
                throw ExitCode(1)
            }
            var admin = LockAdmin(config: config)
            for l in plan.locks {
                _ = try fail { () throws(LockAdmin.Failure) in try admin.add(l.key.description, seconds: l.seconds, reason: l.reason) }
            }
            print("imported \(plan.locks.count) lock(s); skipped \(plan.expired) expired")
            if !plan.exempt.isEmpty {
                print("not locked, owned by another user (smtp-gated's exemption); to keep them exempt add:")
                print("lock_exempt \(Set(plan.exempt).sorted().joined(separator: ","))")
            }
            for name in plan.unreadable { print("ignored (not an address): \(name)") }
        }
    }
}

func loadConfig(_ path: String) throws -> Config {
    try loadConfigFile(path).global
}

func loadConfigFile(_ path: String) throws -> ConfigFile {
    switch Daemon.load(path) {
    case .success(let c): return c.file
    case .failure(let e):
        FileHandleErr.print("smtpgate: \(e)")
        throw ExitCode(1)
    }
}

/// A lock admin failure is one line on stderr and exit code 1.
@discardableResult
func fail<T>(_ body: () throws(LockAdmin.Failure) -> T) throws -> T {
    do {
        return try body()
    } catch {
        FileHandleErr.print("smtpgate: \(error)")
        throw ExitCode(1)
    }
}

enum LocksOutput {
    static func until(_ expires: Double?) -> String {
        expires.map { "until \(SessionLog.isoTime($0))" } ?? "until removed"
    }

    static func table(_ locks: [LockAdmin.Entry]) -> String {
        guard !locks.isEmpty else { return "no locks\n" }
        let rows = [["KEY", "CAUSE", "SINCE", "UNTIL", "REASON"]] + locks.map {
            [$0.key, $0.cause, SessionLog.isoTime($0.created), $0.expires.map(SessionLog.isoTime) ?? "removed", $0.reason]
        }
        let widths = (0..<4).map { i in rows.map { $0[i].count }.max() ?? 0 }
        return rows.map { row in
            (0..<4).map { row[$0].padding(widths[$0]) }.joined(separator: "  ") + "  " + row[4]
        }.joined(separator: "\n") + "\n"
    }

    static func json(_ l: LockAdmin.Entry) -> String {
        let expires = l.expires.map { "\(ControlReply.number($0))" } ?? "null"
        return "{\"key\":\(LogFormat.jsonString(l.key)),\"cause\":\(LogFormat.jsonString(l.cause)),"
            + "\"created\":\(ControlReply.number(l.created)),\"expires\":\(expires),\"reason\":\(LogFormat.jsonString(l.reason))}"
    }
}

extension String {
    func padding(_ width: Int) -> String {
        count >= width ? self : self + String(repeating: " ", count: width - count)
    }
}
