import NIOCore
import SMTPGateCore

extension AdmissionCheck where Request == AdmissionRequest {
    /// `destination_restrictions`: the real destination is permitted, refused (the client's only reply), or
    /// replaced by another MTA before the upstream connection is made.
    static func destination(_ policy: DestinationPolicy) -> Self {
        Self(stage: .originKnown) { request in
            guard let dest = request.origin?.destination, let ip = dest.normalisedIP else { return .pass }
            switch policy.verdict(ip) {
            case .pass:
                return .pass
            case .refuse(let code, let enhanced, let text, let rule):
                return .refuse(.destinationRefused(code: code, enhanced: enhanced, text: text, rule: rule))
            case .redirect(let host, let port, let rule):
                guard let to = try? SocketAddress(ipAddress: host, port: port) else { return .pass }
                request.session.redirect(to: to, rule: rule)
                return .pass
            }
        }
    }
}
