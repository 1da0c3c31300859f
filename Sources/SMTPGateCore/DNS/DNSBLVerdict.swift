/// What the `dnsbl` sites said of one client: the score, which zones listed it, which could not be asked.
public struct DNSBLVerdict: Sendable, Equatable {
    /// The real client's address as the reply names it (`[ADDR]`).
    public var client: String
    public var score: Int
    public var threshold: Int
    /// Zones with a matching entry, in the option's order, each once.
    public var zones: [String]
    /// The matching entry with the highest weight (the first on a tie): the zone the reply names.
    public var heaviest: String?
    /// Zones whose lookup failed; they count nothing.
    public var failed: [(zone: String, failure: DNSFailure)]

    public var listed: Bool { score >= threshold }

    /// Scores `answers` (one per distinct zone, keyed by zone) against `sites`: every entry whose
    /// filter matches one of its zone's A answers adds its weight.
    public static func score(client: String, sites: [DNSBLSite], threshold: Int, answers: [String: DNSAnswer]) -> DNSBLVerdict {
        var v = DNSBLVerdict(client: client, score: 0, threshold: threshold, zones: [], heaviest: nil, failed: [])
        var best: Int?
        for site in sites {
            let addresses = (answers[site.zone]?.records ?? []).compactMap { record -> [UInt8]? in
                if case .address(let a) = record, a.count == 4 { return a }
                return nil
            }
            guard addresses.contains(where: site.counts) else { continue }
            v.score += site.weight
            if !v.zones.contains(site.zone) { v.zones.append(site.zone) }
            if best.map({ site.weight > $0 }) ?? true {
                best = site.weight
                v.heaviest = site.zone
            }
        }
        var seen = Set<String>()
        for site in sites where seen.insert(site.zone).inserted {
            if case .failure(let f) = answers[site.zone] { v.failed.append((site.zone, f)) }
        }
        return v
    }

    public static func == (a: DNSBLVerdict, b: DNSBLVerdict) -> Bool {
        a.client == b.client && a.score == b.score && a.threshold == b.threshold && a.zones == b.zones
            && a.heaviest == b.heaviest && a.failed.map(\.zone) == b.failed.map(\.zone)
            && a.failed.map(\.failure) == b.failed.map(\.failure)
    }
}
