/// `destination_restrictions` over the real destination, in order: the first permit, refusal or redirect
/// decides; the end of the list permits. Pure: the maps are loaded already.
public struct DestinationPolicy: Sendable {
    public let list: [DestinationRestriction]
    public let maps: AccessMapSet

    public enum Verdict: Sendable, Equatable {
        case pass
        /// The client gets this reply instead of a greeting; `rule` is for the log.
        case refuse(code: Int, enhanced: String, text: String, rule: String)
        /// The session goes to this MTA instead.
        case redirect(host: String, port: Int, rule: String)
    }

    public init(list: [DestinationRestriction], maps: AccessMapSet) {
        self.list = list
        self.maps = maps
    }

    /// `address`: the destination's address text (`192.0.2.25`, `2001:db8::25`).
    public func verdict(_ address: String) -> Verdict {
        for r in list {
            let rule = "destination_restrictions \(r.text)"
            switch r {
            case .permit:
                return .pass
            case .reject:
                return .refuse(code: 554, enhanced: "5.7.1", text: "Service unavailable; destination [\(address)] rejected: Access denied", rule: rule)
            case .checkDestinationAccess(let map):
                guard let table = maps.destinationTables[map] else { continue }
                switch AccessMaps.lookupClient(table, name: nil, address: address) {
                case .notFound, .found(.dunno), .found(.warn), .found(.info), .found(.prepend):
                    continue
                case .found(.ok):
                    return .pass
                case .found(.reject(let reply)), .found(.deferred(let reply)), .found(.disconnect(let reply)),
                     .found(.deferIfPermit(let reply)), .found(.deferIfReject(let reply)):
                    return .refuse(code: reply.code, enhanced: reply.enhanced ?? (reply.code >= 500 ? "5.7.1" : "4.7.1"),
                                   text: "Service unavailable; destination [\(address)] rejected: \(reply.text ?? "Access denied")", rule: rule)
                case .found(.redirect(let host, let port)):
                    return .redirect(host: host, port: port, rule: rule)
                case .failed(let why):
                    return .refuse(code: 451, enhanced: "4.3.5", text: "Server configuration error (\(why))", rule: rule)
                }
            }
        }
        return .pass
    }
}
