import Foundation
import NIOCore
import NIOPosix
import SMTPGateCore
import Testing
@testable import SMTPGateProxy

/// The real postgrey (Debian's package) as a child of the test, on 127.0.0.1 or a unix socket in a
/// temporary directory, with its database there too: never the system's service.
final class PostgreyTestServer {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    static let bin = "/usr/sbin/postgrey"
    static var installed: Bool { FileManager.default.isExecutableFile(atPath: bin) }

    let dir: String
    let endpoint: PolicyServiceEndpoint
    private var pid: pid_t = 0

    /// Started on a fresh port up to three times: the free port found may be taken before postgrey binds it.
    /// The waiting runs on a thread of its own, not one of the few the tests' tasks share.
    static func start(delay: Int, unixSocket: Bool = false) async throws -> PostgreyTestServer {
        try await withCheckedThrowingContinuation { (done: CheckedContinuation<PostgreyTestServer, Error>) in
            Thread.detachNewThread {
                var failure: Error?
                for _ in 0..<3 {
                    do {
                        done.resume(returning: try PostgreyTestServer(delay: delay, unixSocket: unixSocket))
                        return
                    } catch {
                        failure = error
                    }
                }
                done.resume(throwing: failure!)
            }
        }
    }

    private init(delay: Int, unixSocket: Bool) throws {
        guard Self.installed else {
            throw Failure(description: "postgrey is not installed (\(Self.bin) missing): run scripts/deps.sh or apt-get install postgrey")
        }
        dir = NSTemporaryDirectory() + "smtpgate-postgrey.\(getpid()).\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: false)
        let listen: String
        if unixSocket {
            endpoint = .unix("\(dir)/postgrey.sock")
            listen = "--unix=\(dir)/postgrey.sock"
        } else {
            let port = try Self.freePort()
            endpoint = .inet(IPAddress("127.0.0.1")!, port)
            listen = "--inet=127.0.0.1:\(port)"
        }
        // postgrey drops to --user/--group (default postgrey); run it as whoever runs the tests.
        let user = getpwuid(geteuid()).map { String(cString: $0.pointee.pw_name) } ?? "root"
        let group = getgrgid(getegid()).map { String(cString: $0.pointee.gr_name) } ?? "root"
        let argv = [Self.bin, listen, "--dbdir=\(dir)", "--delay=\(delay)", "--pidfile=\(dir)/pid", "--user=\(user)",
                    "--group=\(group)", "--whitelist-clients=/dev/null", "--whitelist-recipients=/dev/null",
                    "--hostname=gate.test", "--verbose"]
        do {
            pid = try TestChild.spawn(argv, output: "\(dir)/log")
        } catch {
            throw Failure(description: "cannot run postgrey: \(error)")
        }
        // Ready when it accepts a connection (Perl takes a moment to start).
        for _ in 0..<200 {
            var status: Int32 = 0
            if waitpid(pid, &status, WNOHANG) == pid {
                pid = 0
                defer { try? FileManager.default.removeItem(atPath: dir) }
                throw Failure(description: "postgrey exited at start (status \(status)): \(log())")
            }
            if accepts() { return }
            usleep(50_000)
        }
        stop()
        throw Failure(description: "postgrey did not listen on \(endpoint) within 10 s: \(log())")
    }

    func log() -> String {
        (try? String(contentsOfFile: "\(dir)/log", encoding: .utf8)).map { String($0.suffix(1500)) } ?? ""
    }

    /// Ends postgrey at once, as a crash would: its listening socket and every connection go with it.
    /// SIGKILL, not SIGTERM: postgrey (Net::Server::Multiplex) may take a SIGTERM only when its select wakes,
    /// which with an idle client connection can be minutes away.
    func kill() {
        guard pid > 0 else { return }
        Glibc.kill(pid, SIGKILL)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0, errno == EINTR {}
        pid = 0
    }

    func stop() {
        kill()
        try? FileManager.default.removeItem(atPath: dir)
    }

    private func accepts() -> Bool {
        switch endpoint {
        case .inet(_, let port):
            let s = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            defer { close(s) }
            var addr = sockaddr_in()
            addr.sin_family = sa_family_t(AF_INET)
            addr.sin_port = in_port_t(UInt16(port).bigEndian)
            addr.sin_addr.s_addr = inet_addr("127.0.0.1")
            return withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(s, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            } == 0
        case .unix(let path):
            let s = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
            defer { close(s) }
            var addr = sockaddr_un()
            addr.sun_family = sa_family_t(AF_UNIX)
            withUnsafeMutableBytes(of: &addr.sun_path) { raw in
                for (i, byte) in path.utf8.prefix(raw.count - 1).enumerated() { raw[i] = byte }
            }
            return withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(s, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            } == 0
        }
    }

    /// A TCP port on 127.0.0.1 that was free a moment ago.
    static func freePort() throws -> Int {
        let s = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(s) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(s, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else { throw Failure(description: "cannot bind 127.0.0.1:0: \(String(cString: strerror(errno)))") }
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(s, $0, &len) }
        }
        return Int(UInt16(bigEndian: addr.sin_port))
    }
}

@Suite("Policy service client against the real postgrey", .serialized, .timeLimit(.minutes(1)),
       .enabled(if: PostgreyTestServer.installed,
                "postgrey is not installed (/usr/sbin/postgrey): apt-get install --no-install-recommends postgrey, or scripts/deps.sh"))
final class PolicyServicePostgreyTests {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)

    deinit {
        try? group.syncShutdownGracefully()
    }

    func request(_ recipient: String) -> PolicyRequest {
        PolicyRequest(protocolState: .rcpt, protocolName: "ESMTP", clientAddress: "192.0.2.7", clientPort: 40000,
                      serverAddress: "127.0.0.1", serverPort: 25, heloName: "mx.example.org", sender: "a@example.org",
                      recipient: recipient, instance: "1.2.3")
    }

    func settings(_ server: PostgreyTestServer) -> PolicyServiceSettings {
        PolicyServiceSettings(endpoint: server.endpoint, timeout: 5, tryLimit: 2, retryDelay: 0.1)
    }

    @Test func greylistsThenPassesWithAHeaderThenFailsWhenGone() async throws {
        // The early retry must come within the delay even on a loaded host (it once took 2 s under a build).
        let server = try await PostgreyTestServer.start(delay: 5)
        defer { server.stop() }
        let client = PolicyServiceClient(settings: settings(server))
        defer { client.shutdown() }
        let loop = group.next()

        let first = try await client.query(request("b@example.net"), on: loop).get()
        guard case .action(let greylisted) = first else {
            Issue.record("postgrey's first answer: \(first); log: \(server.log())")
            return
        }
        #expect(greylisted.hasPrefix("DEFER_IF_PERMIT "), "\(greylisted)")
        #expect(greylisted.contains("Greylisted"), "\(greylisted)")
        // Too early: still greylisted, on the same connection.
        let early = try await client.query(request("b@example.net"), on: loop).get()
        #expect(early.actionText?.hasPrefix("DEFER_IF_PERMIT ") == true, "\(early)")

        try await Task.sleep(nanoseconds: 6_000_000_000)
        let retried = try await client.query(request("b@example.net"), on: loop).get()
        #expect(retried.actionText?.hasPrefix("PREPEND X-Greylist: delayed ") == true, "\(retried); log: \(server.log())")
        #expect(retried.actionText?.contains("by postgrey-") == true, "\(retried)")
        // Another recipient is a new triplet.
        let other = try await client.query(request("c@example.net"), on: loop).get()
        #expect(other.actionText?.hasPrefix("DEFER_IF_PERMIT ") == true, "\(other)")
        // postgrey keeps the connection: every query went over one.
        let counts = try await client.connections(on: loop).get()
        #expect(counts.open == 1 && counts.idle == 1, "\(counts)")

        server.kill()
        let start = Date()
        let gone = try await client.query(request("b@example.net"), on: loop).get()
        guard case .failed(let reason) = gone else {
            Issue.record("postgrey is gone, yet: \(gone)")
            return
        }
        // The first attempt may find the old connection not yet closed; the retry's fresh one is refused.
        #expect(reason == "2 attempts failed, the last: connection refused", "\(reason)")
        #expect(Date().timeIntervalSince(start) < 2 * 5 + 1)
    }

    @Test func overAUnixSocket() async throws {
        let server = try await PostgreyTestServer.start(delay: 60, unixSocket: true)
        defer { server.stop() }
        let client = PolicyServiceClient(settings: settings(server))
        defer { client.shutdown() }
        let answer = try await client.query(request("d@example.net"), on: group.next()).get()
        #expect(answer.actionText?.hasPrefix("DEFER_IF_PERMIT ") == true, "\(answer); log: \(server.log())")
    }
}

extension PolicyServiceAnswer {
    var actionText: String? {
        if case .action(let text) = self { return text }
        return nil
    }
}
