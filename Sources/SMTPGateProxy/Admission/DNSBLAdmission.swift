import SMTPGateCore

extension AdmissionCheck where Request == AdmissionRequest {
    /// `dnsbl`: a client scored at `dnsbl_threshold` or more is refused instead of greeted.
    static func dnsbl(_ check: DNSBLCheck) -> Self {
        Self(stage: .beforeGreeting) { request in
            guard let ip = request.origin?.client.ipAddress, let address = AddressBytes.parse(LocalAddresses.normalised(ip)) else {
                return .pass
            }
            return .wait(check.verdict(address, on: request.session.client.eventLoop).map { v in
                v.listed ? .refuse(.dnsblListed(v)) : .pass
            })
        }
    }
}
