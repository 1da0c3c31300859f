import NIOConcurrencyHelpers
import NIOCore
import SMTPGateCore

/// Live sessions across event loops: admission counts, and the list a drain walks. The lock is held only
/// for counter updates.
final class SessionRegistry: @unchecked Sendable {
    private let lock = NIOLock()
    private var admission = Admission()
    private var sessions: [ObjectIdentifier: (RelaySession, String)] = [:]
    private var nextID: UInt64 = 0
    private let idPrefix: String

    init() {
        var r = UInt32(0)
        withUnsafeMutableBytes(of: &r) { p in
            for i in 0..<p.count { p[i] = UInt8.random(in: 0...255) }
        }
        idPrefix = String(r, radix: 16)
    }

    func newID() -> String {
        let n = lock.withLock { () -> UInt64 in
            nextID += 1
            return nextID
        }
        return "\(idPrefix)-\(String(n, radix: 16))"
    }

    func admit(host: String, config: Config) -> Admission.Decision {
        lock.withLock {
            admission.admit(host: host, maxConnections: config.maxConnections, maxPerHost: config.maxPerHost)
        }
    }

    func add(_ s: RelaySession, host: String) {
        lock.withLock { sessions[ObjectIdentifier(s)] = (s, host) }
    }

    func remove(_ s: RelaySession) {
        lock.withLock {
            if let (_, host) = sessions.removeValue(forKey: ObjectIdentifier(s)) {
                admission.release(host: host)
            }
        }
    }

    var count: Int { lock.withLock { sessions.count } }

    /// Each live session, on its own event loop.
    func forEach(_ body: @escaping (RelaySession) -> Void) {
        let all = lock.withLock { sessions.values.map(\.0) }
        for s in all {
            s.client.eventLoop.execute { body(s) }
        }
    }
}
