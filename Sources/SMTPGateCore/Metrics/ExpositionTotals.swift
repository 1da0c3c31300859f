/// The status page's counter table: each counter family of an exposition text summed over its series, so
/// the page and `/metrics` can never disagree.
public enum ExpositionTotals {
    public static func counters(_ text: [UInt8]) -> [(name: String, value: Double)] {
        let counters = Set(MetricFamily.allCases.filter { $0.kind == .counter }.map(\.name))
        var sums: [String: Double] = [:]
        for line in text.split(separator: 0x0a) where line.first != UInt8(ascii: "#") {
            guard let end = line.firstIndex(where: { $0 == UInt8(ascii: "{") || $0 == UInt8(ascii: " ") }),
                  let space = line.lastIndex(of: UInt8(ascii: " ")) else { continue }
            let name = String(decoding: line[line.startIndex..<end], as: UTF8.self)
            guard counters.contains(name), let v = Double(String(decoding: line[(space + 1)...], as: UTF8.self)) else { continue }
            sums[name, default: 0] += v
        }
        return MetricFamily.allCases.compactMap { f in sums[f.name].map { (f.name, $0) } }
    }
}
