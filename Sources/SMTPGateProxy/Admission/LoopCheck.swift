import SMTPGateCore

extension AdmissionCheck where Request == AdmissionRequest {
    /// Never an open relay to ourselves: a destination that is this proxy's own listener is refused.
    static func loop(_ localAddresses: LocalAddresses, listenPorts: Set<Int>) -> Self {
        Self(stage: .originKnown) { request in
            guard let origin = request.origin, localAddresses.isLoop(origin.destination, listenPorts: listenPorts) else {
                return .pass
            }
            return .refuse(.loop(destination: RelaySession.describe(origin.destination)))
        }
    }
}
