/// `auth_require` and `auth_skip dnsbl` at MAIL: what an unauthenticated client may not do. Pure; the
/// session gives it what the dialogue has shown so far.
public struct AuthGate: Sendable, Equatable {
    public var requirement: AuthRequirement
    /// A listing `auth_skip dnsbl` let through the greeting, to be held against a client that does not
    /// authenticate.
    public var listing: DNSBLVerdict?

    public enum Verdict: Sendable, Equatable {
        case pass
        case authRequired
        case listed(DNSBLVerdict)
    }

    public init(requirement: AuthRequirement, listing: DNSBLVerdict? = nil) {
        self.requirement = requirement
        self.listing = listing
    }

    /// Whether the gate has anything to check.
    public var isOpen: Bool { requirement == .no && listing == nil }

    public func verdict(_ point: PolicyPoint, _ state: PolicyState) -> Verdict {
        guard case .mail = point, !state.authenticated else { return .pass }
        if let listing { return .listed(listing) }
        switch requirement {
        case .no: return .pass
        // Only an EHLO reply without AUTH lets a client off: a MAIL pipelined behind its EHLO (which RFC 2920
        // forbids) or after HELO cannot show that the MTA offers no AUTH.
        case .ifSupported: return state.authOffered == false ? .pass : .authRequired
        case .mandatory: return .authRequired
        }
    }
}
