import NIOConcurrencyHelpers
import NIOCore
import SMTPGateCore

/// Live sessions across event loops: admission counts, and the list a drain walks. The lock is held only
/// for counter updates.
final class SessionRegistry: @unchecked Sendable {
    private struct Entry {
        let session: RelaySession
        var host: String?
        var ident: String?
    }

    private let lock = NIOLock()
    private var admission = Admission()
    /// `max_per_ident`, counted like hosts under their `ident@address` key.
    private var idents = Admission()
    private var sessions: [ObjectIdentifier: Entry] = [:]
    private var nextID: UInt64 = 0
    private let idPrefix: String

    init() {
        idPrefix = String(UInt32.random(in: 0...UInt32.max), radix: 16)
    }

    func newID() -> String {
        let n = lock.withLock { () -> UInt64 in
            nextID += 1
            return nextID
        }
        return "\(idPrefix)-\(String(n, radix: 16))"
    }

    /// Counts the session against `max_connections`; on `.admit` it is registered.
    func admit(_ s: RelaySession, config: Config) -> Admission.Decision {
        lock.withLock {
            let d = admission.admitConnection(maxConnections: config.maxConnections)
            if d == .admit { sessions[ObjectIdentifier(s)] = Entry(session: s) }
            return d
        }
    }

    /// Counts the session's real client against `max_per_host`, once the client is known.
    func admitHost(_ s: RelaySession, host: String, config: Config) -> Admission.Decision {
        lock.withLock {
            let d = admission.admitHost(host, maxPerHost: config.maxPerHost)
            if d == .admit { sessions[ObjectIdentifier(s)]?.host = host }
            return d
        }
    }

    func admitIdent(_ s: RelaySession, key: String, maxPerIdent: Int) -> Admission.Decision {
        lock.withLock {
            let d = idents.admitHost(key, maxPerHost: maxPerIdent)
            if d == .admit { sessions[ObjectIdentifier(s)]?.ident = key }
            return d
        }
    }

    func remove(_ s: RelaySession) {
        lock.withLock {
            guard let entry = sessions.removeValue(forKey: ObjectIdentifier(s)) else { return }
            if let host = entry.host { admission.releaseHost(host) }
            if let ident = entry.ident { idents.releaseHost(ident) }
            admission.releaseConnection()
        }
    }

    var count: Int { lock.withLock { sessions.count } }

    /// Each live session, on its own event loop.
    func forEach(_ body: @escaping (RelaySession) -> Void) {
        let all = lock.withLock { sessions.values.map(\.session) }
        for s in all {
            s.client.eventLoop.execute { body(s) }
        }
    }
}
