/// What the proxy's own clients of other services report as each call ends: a `remote-udp` question to
/// smtpgate-helper, a DNS lookup, a policy-service query, an action script's run. Results are closed sets
/// (they become metric labels); `seconds` is nil where nothing was waited for (a cached answer, a query
/// that could not be sent, a script dropped from a full queue).
public enum ServiceObservation: Sendable, Equatable {
    case helperLookup(HelperResult, seconds: Double?)
    case dnsLookup(DNSType, DNSResult, seconds: Double?)
    /// `service` is the endpoint as configured (`inet:127.0.0.1:10023`): bounded by the configuration.
    case policyQuery(service: String, PolicyResult, seconds: Double)
    case actionRun(ActionResult)

    public enum HelperResult: String, Sendable, CaseIterable {
        case found
        case notFound = "not_found"
        /// No valid answer after every retry.
        case timeout
        /// Not asked or not answerable: unusable addresses, no socket, an unusable answer.
        case error
    }

    public enum DNSResult: String, Sendable, CaseIterable {
        case records
        case nxdomain
        case nodata
        case cached
        case timeout
        case servfail
        case malformed
        case busy
        case badName = "bad_name"
        case error

        public init(_ answer: DNSAnswer) {
            switch answer {
            case .records: self = .records
            case .nxdomain: self = .nxdomain
            case .noData: self = .nodata
            case .failure(.timeout): self = .timeout
            case .failure(.serverFailure): self = .servfail
            case .failure(.malformed): self = .malformed
            case .failure(.busy): self = .busy
            case .failure(.badName): self = .badName
            case .failure(.resolver): self = .error
            }
        }
    }

    public enum PolicyResult: String, Sendable, CaseIterable {
        /// The server sent an action.
        case answered
        /// Every attempt failed; the service's default_action applied.
        case failed
    }

    public enum ActionResult: String, Sendable, CaseIterable {
        /// Exited 0.
        case ok
        case exitNonzero = "exit_nonzero"
        case signalled
        /// Killed after `timeout_action`.
        case timeout
        /// Could not be started (no thread, spawn failed) or its status was lost.
        case failed
        /// Dropped because the queue was full.
        case dropped

        public init(_ outcome: ActionLog.Outcome) {
            switch outcome {
            case .exited(0): self = .ok
            case .exited: self = .exitNonzero
            case .signalled: self = .signalled
            case .timedOut: self = .timeout
            case .unknown: self = .failed
            }
        }
    }
}

/// Takes the observations of the daemon's service clients; called on whatever thread the call ended on,
/// so it must not block.
public protocol ServiceObserver: Sendable {
    func observe(_ observation: ServiceObservation)
}
