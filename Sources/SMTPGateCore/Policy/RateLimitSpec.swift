/// The value of one `ratelimit_<kind>` option: no windows (off) or up to four windows of different
/// lengths, all of which must hold.
public struct RateLimitSpec: Sendable, Equatable {
    static let maxWindows = 4
    static let maxLimit = 1_000_000_000_000
    static let maxSeconds = 31 * 86400

    /// Shortest first, so the window that trips first is checked first.
    public let windows: [RateWindow]

    /// Takes the windows as they are (for specs built in code); configuration text goes through `parse`,
    /// which checks the bounds.
    public init(windows: [RateWindow]) {
        self.windows = windows.sorted { $0.seconds < $1.seconds }
    }

    public var isOff: Bool { windows.isEmpty }

    /// `0` = off; `N` = at most N per `defaultSeconds` (smtp-gated's single number, whose window is a
    /// separate option); `N/SECONDS` with an optional unit s, m, h or d, several separated by spaces
    /// (`10/1m 150/1d`).
    public static func parse(_ v: String, defaultSeconds: Int) throws(PolicyValueError) -> RateLimitSpec {
        guard v.utf8.count <= 256 else { throw PolicyValueError("rate limit is too long: \(CIDR.ParseError.show(v))") }
        let words = Array(v.utf8).split(whereSeparator: { $0 == 0x20 || $0 == 0x09 })
        guard !words.isEmpty else { throw PolicyValueError("expected 0, a limit, or LIMIT/SECONDS windows, got an empty value") }
        if words.count == 1, words[0].elementsEqual("0".utf8) { return RateLimitSpec(windows: []) }
        guard words.count <= maxWindows else {
            throw PolicyValueError("at most \(maxWindows) windows, got \(words.count) in \(CIDR.ParseError.show(v))")
        }
        var windows: [RateWindow] = []
        for raw in words {
            let word = String(decoding: raw, as: UTF8.self)
            let parts = raw.split(separator: UInt8(ascii: "/"), maxSplits: 2, omittingEmptySubsequences: false)
            guard parts.count <= 2, let limit = number(parts[0]), (1...maxLimit).contains(limit) else {
                throw PolicyValueError("expected a limit from 1 to \(maxLimit) (or 0 alone for off), got \(CIDR.ParseError.show(word))")
            }
            let seconds: Int
            if parts.count == 2 {
                guard let s = duration(parts[1]), (1...maxSeconds).contains(s) else {
                    throw PolicyValueError("expected a window of 1 second to 31 days (digits with an optional s, m, h or d), got \(CIDR.ParseError.show(word))")
                }
                seconds = s
            } else {
                guard (1...maxSeconds).contains(defaultSeconds) else {
                    throw PolicyValueError("\(CIDR.ParseError.show(word)) has no /SECONDS and the default window (\(defaultSeconds) s) is not 1 second to 31 days")
                }
                seconds = defaultSeconds
            }
            guard !windows.contains(where: { $0.seconds == seconds }) else {
                throw PolicyValueError("two windows of \(seconds) seconds in \(CIDR.ParseError.show(v))")
            }
            windows.append(RateWindow(limit: limit, seconds: seconds))
        }
        return RateLimitSpec(windows: windows)
    }

    /// check-config form, readable by `parse`: `0`, or `LIMIT/LENGTH` with the largest exact unit.
    public static func show(_ spec: RateLimitSpec) -> String {
        guard !spec.isOff else { return "0" }
        return spec.windows.map { "\($0.limit)/\(showSeconds($0.seconds))" }.joined(separator: " ")
    }

    private static func showSeconds(_ s: Int) -> String {
        for (unit, size) in [("d", 86400), ("h", 3600), ("m", 60)] where s % size == 0 {
            return "\(s / size)\(unit)"
        }
        return "\(s)"
    }

    /// Plain decimal digits; at most 13 so that no value can overflow before the range check.
    private static func number(_ digits: ArraySlice<UInt8>) -> Int? {
        guard !digits.isEmpty, digits.count <= 13, digits.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
        return digits.reduce(0) { $0 * 10 + Int($1 - 0x30) }
    }

    private static func duration(_ text: ArraySlice<UInt8>) -> Int? {
        guard let last = text.last else { return nil }
        let units: [UInt8: Int] = [UInt8(ascii: "s"): 1, UInt8(ascii: "m"): 60, UInt8(ascii: "h"): 3600, UInt8(ascii: "d"): 86400]
        if let unit = units[last | 0x20], last >= 0x41 {
            return number(text.dropLast()).map { $0 * unit }
        }
        return number(text)
    }
}
