import SMTPGateCore

extension AdmissionCheck where Request == AdmissionRequest {
    /// `dnsbl`: a client scored at `dnsbl_threshold` or more is refused instead of greeted; with
    /// `deferToMail` (`auth_skip dnsbl`) it is greeted and its listing waits for an unauthenticated MAIL.
    static func dnsbl(_ check: DNSBLCheck, deferToMail: Bool) -> Self {
        Self(stage: .beforeGreeting) { request in
            guard let address = request.origin?.client.ipBytes else {
                return .pass
            }
            let session = request.session
            return .wait(check.verdict(address, on: session.client.eventLoop).map { v in
                guard v.listed else { return .pass }
                guard deferToMail else { return .refuse(.dnsblListed(v)) }
                session.holdListing(v)
                return .pass
            })
        }
    }
}
