/// The totals `smtpgate status`, the state file and the status page show, read from the daemon's own
/// exposition text, so none of them can disagree with `/metrics`.
public enum ExpositionTotals {
    /// One sample line: family name, labels in order, value.
    public struct Sample: Sendable, Equatable {
        public var name: String
        public var labels: [String: String]
        public var value: Double
    }

    /// Each counter family summed over its series, in `MetricFamily` order.
    public static func counters(_ text: [UInt8]) -> [(name: String, value: Double)] {
        let counters = Set(MetricFamily.allCases.filter { $0.kind == .counter }.map(\.name))
        var sums: [String: Double] = [:]
        for s in samples(text) where counters.contains(s.name) { sums[s.name, default: 0] += s.value }
        return MetricFamily.allCases.compactMap { f in sums[f.name].map { (f.name, $0) } }
    }

    /// Per listener: connections ended and refused, transactions, bytes each way.
    public static func listeners(_ text: [UInt8]) -> [String: ListenerCounts] {
        let relayed: Set<String> = [ForwardLog.Result.doneLocalClosed.rawValue, ForwardLog.Result.doneRemoteClosed.rawValue,
                                    ForwardLog.Result.timeout.rawValue, ForwardLog.Result.shutdown.rawValue]
        var out: [String: ListenerCounts] = [:]
        for s in samples(text) {
            guard let name = s.labels["listener"], s.value.isFinite, s.value >= 0 else { continue }
            let v = Int(min(s.value, 9e15))
            switch s.name {
            case MetricFamily.sessions.name:
                out[name, default: .init()].ended += v
            case MetricFamily.forwards.name:
                out[name, default: .init()].ended += v
                if !relayed.contains(s.labels["result"] ?? "") { out[name, default: .init()].refused += v }
            case MetricFamily.refusals.name:
                out[name, default: .init()].refused += v
            case MetricFamily.transactions.name:
                out[name, default: .init()].transactions += v
            case MetricFamily.bytes.name:
                if s.labels["direction"] == "from_client" { out[name, default: .init()].bytesIn += v }
                if s.labels["direction"] == "to_client" { out[name, default: .init()].bytesOut += v }
            default:
                break
            }
        }
        return out
    }

    /// The sample lines of the text format (comments and lines it cannot read are skipped). Label values
    /// are unescaped (`\\`, `\"`, `\n`).
    public static func samples(_ text: [UInt8]) -> [Sample] {
        var out: [Sample] = []
        for line in text.split(separator: 0x0a) where line.first != UInt8(ascii: "#") {
            if let s = sample(line) { out.append(s) }
        }
        return out
    }

    private static func sample(_ line: ArraySlice<UInt8>) -> Sample? {
        guard let end = line.firstIndex(where: { $0 == UInt8(ascii: "{") || $0 == UInt8(ascii: " ") }),
              let space = line.lastIndex(of: UInt8(ascii: " ")), space >= end,
              let value = Double(String(decoding: line[(space + 1)...], as: UTF8.self)) else { return nil }
        let name = String(decoding: line[line.startIndex..<end], as: UTF8.self)
        var labels: [String: String] = [:]
        if line[end] == UInt8(ascii: "{") {
            guard let parsed = self.labels(line[(end + 1)..<space]) else { return nil }
            labels = parsed
        }
        return Sample(name: name, labels: labels, value: value)
    }

    /// `a="x",b="y\"z"}` — the label set after its opening brace, up to and including the closing one.
    private static func labels(_ bytes: ArraySlice<UInt8>) -> [String: String]? {
        var out: [String: String] = [:]
        var i = bytes.startIndex
        while i < bytes.endIndex {
            if bytes[i] == UInt8(ascii: "}") { return out }
            if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
            guard let eq = bytes[i...].firstIndex(of: UInt8(ascii: "=")), eq + 1 < bytes.endIndex,
                  bytes[eq + 1] == UInt8(ascii: "\"") else { return nil }
            let key = String(decoding: bytes[i..<eq], as: UTF8.self)
            var value: [UInt8] = []
            var j = eq + 2
            var closed = false
            while j < bytes.endIndex {
                let b = bytes[j]
                if b == UInt8(ascii: "\"") { closed = true; break }
                if b == UInt8(ascii: "\\"), j + 1 < bytes.endIndex {
                    j += 1
                    value.append(bytes[j] == UInt8(ascii: "n") ? 0x0a : bytes[j])
                } else {
                    value.append(b)
                }
                j += 1
            }
            guard closed else { return nil }
            out[key] = String(decoding: value, as: UTF8.self)
            i = j + 1
        }
        return nil
    }
}
