#if canImport(Glibc)
import Glibc
#endif
import SMTPGateCore

extension AdmissionCheck where Request == AdmissionRequest {
    /// `max_load`: the 1-minute load average, read at most once a second.
    static func maxLoad(_ limit: Double, _ load: LoadAverage) -> Self {
        Self(stage: .accepted) { _ in
            guard let now = load.current(), now > limit else { return .pass }
            return .refuse(.loadTooHigh(load: now, limit: limit))
        }
    }

    /// A locked client is refused before anything is looked up, where the peer is the client itself.
    static func lockAtAccept(_ abuse: ListenerAbuse) -> Self {
        Self(stage: .accepted) { request in
            guard let key = request.peerKeys?.lock, let lock = abuse.activeLock(key) else { return .pass }
            return .refuse(.locked(lock))
        }
    }

    /// Once the real client is known, and before any upstream connection.
    static func lock(_ abuse: ListenerAbuse) -> Self {
        Self(stage: .originKnown) { request in
            guard let key = request.keys?.lock, let lock = abuse.activeLock(key) else { return .pass }
            return .refuse(.locked(lock))
        }
    }

    /// `max_per_ident`: connections per real client and ident (split mode, where the helper reports one).
    static func maxPerIdent(_ registry: SessionRegistry, limit maxPerIdent: Int) -> Self {
        Self(stage: .originKnown) { request in
            guard maxPerIdent > 0, let origin = request.origin, let ident = origin.ident, !ident.isEmpty else {
                return .pass
            }
            // Counted whether or not abuse control is on, like max_per_host.
            let host = origin.client.normalisedIP ?? "-"
            if case .tooManyFromHost(let limit) = registry.admitIdent(request.session, key: "\(ident)@\(host)",
                                                                      maxPerIdent: maxPerIdent) {
                return .refuse(.tooManyFromIdent(limit: limit))
            }
            return .pass
        }
    }

    /// `ratelimit_connections` and `ratelimit_destinations`; an admitted connection is counted.
    static func connectionRates(_ abuse: ListenerAbuse) -> Self {
        Self(stage: .originKnown) { request in
            guard let key = request.keys?.rate, let origin = request.origin else { return .pass }
            let destination = RelaySession.describe(origin.destination)
            return abuse.admitConnection(key, to: destination).map { .refuse(.rateLimited($0)) } ?? .pass
        }
    }
}
