import SMTPGateCore

extension AdmissionCheck where Request == AdmissionRequest {
    /// `max_connections`, counted when a connection is accepted; an admitted session is registered for the drain.
    /// The checks hold their limits, not the `Config`: a copy of it is some 1,300 instructions of retains.
    static func maxConnections(_ registry: SessionRegistry, limit maxConnections: Int) -> Self {
        Self(stage: .accepted) { request in
            if case .tooManyConnections(let limit) = registry.admit(request.session, maxConnections: maxConnections) {
                return .refuse(.tooManyConnections(limit: limit))
            }
            return .pass
        }
    }

    /// `max_per_host`, counted once the real client is known (behind a NAT the peer is the router).
    static func maxPerHost(_ registry: SessionRegistry, limit maxPerHost: Int) -> Self {
        Self(stage: .originKnown) { request in
            guard let origin = request.origin else { return .pass }
            let host = origin.client.normalisedIP ?? "-"
            if case .tooManyFromHost(let limit) = registry.admitHost(request.session, host: host, maxPerHost: maxPerHost) {
                return .refuse(.tooManyFromHost(limit: limit))
            }
            return .pass
        }
    }
}
