import NIOConcurrencyHelpers
import NIOCore
import SMTPGateCore

/// What a registry holds: an SMTP relay session or a TCP forward.
protocol RegisteredSession: AnyObject {
    var client: Channel { get }
    /// Ends the session now (a drain's deadline has passed).
    func shutdown()
    /// What `smtpgate status` shows of it; called on `client.eventLoop`.
    func snapshot() -> SessionSnapshot
}

/// Sessions handed to their own event loop, where their state may be read.
private struct LoopSessions: @unchecked Sendable {
    let list: [any RegisteredSession]
}

/// Session ids unique across the daemon's listeners: a random prefix per run and a counter.
final class SessionIDs: @unchecked Sendable {
    private let lock = NIOLock()
    private var next: UInt64 = 0
    private let prefix = String(UInt32.random(in: 0...UInt32.max), radix: 16)

    func make() -> String {
        let n = lock.withLock { () -> UInt64 in
            next += 1
            return next
        }
        return "\(prefix)-\(String(n, radix: 16))"
    }
}

/// One listener's live sessions across event loops: its admission counts (`max_connections` and
/// `max_per_host` are per listener), and the list a drain walks. The lock is held only for counter updates.
final class SessionRegistry: @unchecked Sendable {
    private struct Entry {
        let session: any RegisteredSession
        var host: String?
        var ident: String?
    }

    private let lock = NIOLock()
    private var admission = Admission()
    /// `max_per_ident`, counted like hosts under their `ident@address` key.
    private var idents = Admission()
    private var sessions: [ObjectIdentifier: Entry] = [:]
    private let ids: SessionIDs

    init(ids: SessionIDs = SessionIDs()) {
        self.ids = ids
    }

    func newID() -> String { ids.make() }

    /// Counts the session against `max_connections`; on `.admit` it is registered.
    func admit(_ s: any RegisteredSession, maxConnections: Int) -> Admission.Decision {
        lock.withLock {
            let d = admission.admitConnection(maxConnections: maxConnections)
            if d == .admit { sessions[ObjectIdentifier(s)] = Entry(session: s) }
            return d
        }
    }

    /// Counts the session's real client against `max_per_host`, once the client is known.
    func admitHost(_ s: any RegisteredSession, host: String, maxPerHost: Int) -> Admission.Decision {
        lock.withLock {
            let d = admission.admitHost(host, maxPerHost: maxPerHost)
            if d == .admit { sessions[ObjectIdentifier(s)]?.host = host }
            return d
        }
    }

    func admitIdent(_ s: any RegisteredSession, key: String, maxPerIdent: Int) -> Admission.Decision {
        lock.withLock {
            let d = idents.admitHost(key, maxPerHost: maxPerIdent)
            if d == .admit { sessions[ObjectIdentifier(s)]?.ident = key }
            return d
        }
    }

    /// Sessions read per task on a loop: a status of thousands of sessions is many short tasks between
    /// which the loop goes on relaying, not one long one.
    static let snapshotChunk = 256

    /// Every session's snapshot, each taken on its own event loop, oldest first.
    func snapshots(on loop: EventLoop) -> EventLoopFuture<[SessionSnapshot]> {
        let all = lock.withLock { sessions.values.map(\.session) }
        let byLoop = Dictionary(grouping: all) { ObjectIdentifier($0.client.eventLoop) }.values
        let chunks = byLoop.flatMap { group in
            stride(from: 0, to: group.count, by: Self.snapshotChunk).map {
                LoopSessions(list: Array(group[$0..<min($0 + Self.snapshotChunk, group.count)]))
            }
        }
        let taken = chunks.map { chunk in
            chunk.list[0].client.eventLoop.submit { chunk.list.map { $0.snapshot() } }
        }
        return EventLoopFuture.whenAllSucceed(taken, on: loop).map { $0.flatMap { $0 }.sorted { $0.age > $1.age } }
    }

    func remove(_ s: any RegisteredSession) {
        lock.withLock {
            guard let entry = sessions.removeValue(forKey: ObjectIdentifier(s)) else { return }
            if let host = entry.host { admission.releaseHost(host) }
            if let ident = entry.ident { idents.releaseHost(ident) }
            admission.releaseConnection()
        }
    }

    var count: Int { lock.withLock { sessions.count } }

    /// Each live session, on its own event loop.
    func forEach(_ body: @escaping (any RegisteredSession) -> Void) {
        let all = lock.withLock { sessions.values.map(\.session) }
        for s in all {
            s.client.eventLoop.execute { body(s) }
        }
    }
}
