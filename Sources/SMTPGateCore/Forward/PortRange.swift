/// A forward's `port` or `fixed_server_port`: one port (`443`) or an inclusive range (`10001-10003`)
/// of at most ``maxCount`` ports. A listening range and a destination range of the same length are
/// mapped one to one, in order.
public struct PortRange: Sendable, Hashable, CustomStringConvertible {
    public let lower: Int
    public let upper: Int

    public static let maxCount = 256

    public init?(lower: Int, upper: Int) {
        guard (1...65535).contains(lower), (1...65535).contains(upper), lower <= upper,
              upper - lower + 1 <= Self.maxCount else { return nil }
        self.lower = lower
        self.upper = upper
    }

    init(parsing text: String) throws(OptionValueError) {
        let shown = "'\(LogEscape.escape(String(text.prefix(40))))\(text.count > 40 ? "..." : "")'"
        let parts = text.utf8.split(separator: UInt8(ascii: "-"), maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count <= 2,
              let low = Self.number(parts[0]),
              let high = parts.count == 2 ? Self.number(parts[1]) : low
        else {
            throw OptionValueError("expected a port (1 to 65535) or a range such as 10001-10003, got \(shown)")
        }
        guard low <= high else {
            throw OptionValueError("port range \(shown) runs backwards: write the lower port first")
        }
        guard high - low + 1 <= Self.maxCount else {
            throw OptionValueError("port range \(shown) has \(high - low + 1) ports; a forward listens on at most \(Self.maxCount)")
        }
        lower = low
        upper = high
    }

    /// 1...65535 written in plain decimal digits (no sign, no spaces), or nil.
    private static func number(_ digits: Substring.UTF8View) -> Int? {
        guard !digits.isEmpty, digits.count <= 5,
              digits.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else { return nil }
        let n = digits.reduce(0) { $0 * 10 + Int($1 - UInt8(ascii: "0")) }
        return (1...65535).contains(n) ? n : nil
    }

    public var count: Int { upper - lower + 1 }

    public var description: String { lower == upper ? "\(lower)" : "\(lower)-\(upper)" }

    /// The port of `target` at the same offset as `port` in this range: nil when `port` is outside
    /// it or the two ranges are not of the same length.
    public func mapped(_ port: Int, onto target: PortRange) -> Int? {
        guard count == target.count, (lower...upper).contains(port) else { return nil }
        return target.lower + (port - lower)
    }
}
