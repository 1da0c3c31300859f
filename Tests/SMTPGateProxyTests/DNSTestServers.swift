import Foundation

/// A real DNS server for the resolver tests: Debian's dnsmasq on 127.0.0.1 (a free UDP and TCP port),
/// no upstream, serving only the records given, NXDOMAIN for other names under its `--local` domains.
final class DnsmasqTestServer {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    static let bin = "/usr/sbin/dnsmasq"
    let port: UInt16
    let dir: String
    private var pid: pid_t = 0

    var address: String { "127.0.0.1@\(port)" }

    init(records: [String], local: [String] = ["example", "10.in-addr.arpa"]) throws {
        guard FileManager.default.isExecutableFile(atPath: Self.bin) else {
            throw Failure(description: "dnsmasq is not installed (\(Self.bin) missing): run scripts/deps.sh or apt-get install dnsmasq-base")
        }
        port = try ScriptedDNS.freePort()
        dir = NSTemporaryDirectory() + "smtpgate-dns.\(getpid()).\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: false)
        let argv = [Self.bin, "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv", "--no-hosts", "--bind-interfaces",
                    "--listen-address=127.0.0.1", "--port=\(port)", "--pid-file=\(dir)/pid", "--user=nobody",
                    "--group=nogroup", "--local-ttl=300", "--log-facility=\(dir)/log"]
            + local.map { "--local=/\($0)/" } + records
        do {
            pid = try TestChild.spawn(argv)
        } catch {
            throw Failure(description: "cannot run dnsmasq: \(error)")
        }
        // Ready when it answers (REFUSED or NXDOMAIN will do).
        for _ in 0..<100 {
            var status: Int32 = 0
            if waitpid(pid, &status, WNOHANG) == pid {
                pid = 0
                throw Failure(description: "dnsmasq exited at start (status \(status)): \(log())")
            }
            if ScriptedDNS.answers(port: port) { return }
            usleep(50_000)
        }
        stop()
        throw Failure(description: "dnsmasq did not answer on 127.0.0.1:\(port) within 5 s: \(log())")
    }

    func log() -> String {
        (try? String(contentsOfFile: "\(dir)/log", encoding: .utf8)).map { String($0.suffix(1500)) } ?? ""
    }

    func stop() {
        if pid > 0 {
            kill(pid, SIGTERM)
            var status: Int32 = 0
            while waitpid(pid, &status, 0) < 0, errno == EINTR {}
            pid = 0
        }
        try? FileManager.default.removeItem(atPath: dir)
    }
}

/// A UDP "DNS server" on 127.0.0.1 that misbehaves on purpose: never answers, answers bytes that are
/// not DNS, or answers SERVFAIL to every question.
final class ScriptedDNS: @unchecked Sendable {
    enum Mode { case silent, garbage, servfail }

    let port: UInt16
    private let fd: Int32
    private let mode: Mode
    private let done = DispatchSemaphore(value: 0)
    private var stopped = false

    init(_ mode: Mode) throws {
        self.mode = mode
        let s = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(s, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard bound == 0 else { throw DnsmasqTestServer.Failure(description: "bind: \(String(cString: strerror(errno)))") }
        var tv = timeval(tv_sec: 0, tv_usec: 100_000)
        setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        fd = s
        port = try Self.localPort(s)
        let me = self
        DispatchQueue.global().async { me.serve() }
    }

    var address: String { "127.0.0.1@\(port)" }

    func stop() {
        stopped = true
        done.wait()
        close(fd)
    }

    private func serve() {
        var buf = [UInt8](repeating: 0, count: 4096)
        for _ in 0..<600 where !stopped {  // bounded: a minute at most
            var peer = sockaddr_storage()
            var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let n = withUnsafeMutablePointer(to: &peer) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { recvfrom(fd, &buf, buf.count, 0, $0, &len) }
            }
            guard n >= 12 else { continue }
            let reply: [UInt8]
            switch mode {
            case .silent: continue
            case .garbage: reply = [buf[0], buf[1]] + Array("this is not DNS\u{0}\u{ff}".utf8)
            case .servfail: reply = Self.servfail(Array(buf[0..<n]))
            }
            _ = withUnsafePointer(to: &peer) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(fd, reply, reply.count, 0, $0, len) }
            }
        }
        done.signal()
    }

    /// The query's header and question with QR, RA and RCODE 2 set, and no other sections.
    static func servfail(_ q: [UInt8]) -> [UInt8] {
        var i = 12
        while i < q.count, q[i] != 0 { i += Int(q[i]) + 1 }
        let end = min(q.count, i + 5)
        var r = Array(q[0..<end])
        r[2] = 0x80 | (q[2] & 0x01)
        r[3] = 0x82
        for k in 6..<12 { r[k] = 0 }
        return r
    }

    static func freePort() throws -> UInt16 {
        let s = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        defer { close(s) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(s, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        return try localPort(s)
    }

    static func localPort(_ fd: Int32) throws -> UInt16 {
        var addr = sockaddr_in()
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let rc = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        guard rc == 0 else { throw DnsmasqTestServer.Failure(description: "getsockname: \(String(cString: strerror(errno)))") }
        return UInt16(bigEndian: addr.sin_port)
    }

    /// True when something on 127.0.0.1:`port` answers a DNS question (any answer).
    static func answers(port: UInt16) -> Bool {
        let s = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        defer { close(s) }
        var tv = timeval(tv_sec: 0, tv_usec: 100_000)
        setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = port.bigEndian
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        // ID 1, RD, one question: "probe." A IN.
        let q: [UInt8] = [0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 5] + Array("probe".utf8) + [0, 0, 1, 0, 1]
        _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(s, q, q.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        var buf = [UInt8](repeating: 0, count: 512)
        return recv(s, &buf, buf.count, 0) > 0
    }
}
