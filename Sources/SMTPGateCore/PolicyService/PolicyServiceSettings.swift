/// One policy service and how it is talked to: Postfix's `smtpd_policy_service_*` parameters with
/// Postfix's defaults, except `defaultAction`: SMTPGate fails open (`DUNNO`), so a greylisting server that is
/// down delays no mail; set `default_action` to Postfix's `451 4.3.5 Server configuration problem` to fail
/// closed.
///
/// The option value is either an endpoint (`inet:127.0.0.1:10023`) or Postfix 3's per-service form, the
/// endpoint then settings in braces, separated by commas or spaces, named as Postfix's parameters without
/// their `smtpd_policy_service_` prefix:
/// `{ inet:127.0.0.1:10023, timeout=10s, default_action=DUNNO }`; a value with spaces or commas goes in
/// braces of its own: `{ inet:127.0.0.1:10023, { default_action = 451 4.3.5 Try again later } }`.
public struct PolicyServiceSettings: Sendable, Equatable, CustomStringConvertible {
    public var endpoint: PolicyServiceEndpoint
    /// Bounds each attempt: connecting, sending and waiting for the answer (Postfix: 100s).
    public var timeout: Double
    /// An unused connection is closed after this long (Postfix: 300s).
    public var maxIdle: Double
    /// A connection is not used again once this old (Postfix: 1000s).
    public var maxTTL: Double
    /// Attempts per query before it fails (Postfix: 2).
    public var tryLimit: Int
    /// The pause between attempts (Postfix: 1s).
    public var retryDelay: Double
    /// Queries per connection, then it is closed; 0 means no limit (Postfix: 0).
    public var requestLimit: Int
    /// The action applied when a query fails, raw (an access(5) action).
    public var defaultAction: String
    /// Sent as the request's `policy_context` (Postfix: empty).
    public var policyContext: String

    public static let postfixDefaultAction = "451 4.3.5 Server configuration problem"
    public static let defaultAction = "DUNNO"

    public static let maxTimeout: Double = 3600
    public static let maxIdleLimit: Double = 86400
    public static let maxTTLLimit: Double = 7 * 86400
    public static let maxTryLimit = 100
    public static let maxTextBytes = 1024

    public init(endpoint: PolicyServiceEndpoint, timeout: Double = 100, maxIdle: Double = 300, maxTTL: Double = 1000,
                tryLimit: Int = 2, retryDelay: Double = 1, requestLimit: Int = 0,
                defaultAction: String = PolicyServiceSettings.defaultAction, policyContext: String = "") {
        self.endpoint = endpoint
        self.timeout = timeout
        self.maxIdle = maxIdle
        self.maxTTL = maxTTL
        self.tryLimit = tryLimit
        self.retryDelay = retryDelay
        self.requestLimit = requestLimit
        self.defaultAction = defaultAction
        self.policyContext = policyContext
    }

    /// Reads an option value. Settings the value does not name come from `base` (its endpoint aside), as
    /// Postfix's per-service settings override the global `smtpd_policy_service_*` ones; without `base`,
    /// from the defaults above. Errors say what is wrong, without a file or line (the caller adds them).
    public static func parse(_ text: String, inheriting base: PolicyServiceSettings? = nil) throws(PolicyValueError) -> PolicyServiceSettings {
        let value = text.trimmingPolicySpaces()
        guard !value.isEmpty else { throw PolicyValueError("policy service: empty value, expected inet:ADDRESS:PORT or unix:/PATH") }
        guard value.hasPrefix("{") else {
            guard !value.contains(where: { Self.separators.contains($0) }) else {
                throw PolicyValueError("policy service '\(LogEscape.escape(value))': one endpoint expected; per-service settings "
                    + "go in braces: { inet:127.0.0.1:10023, timeout=10s }")
            }
            return try with(endpoint: PolicyServiceEndpoint(parsing: value), base: base)
        }
        guard value.hasSuffix("}"), value.count >= 2 else {
            throw PolicyValueError("policy service '\(LogEscape.escape(value))': no '}' at the end")
        }
        let items = try tokens(String(value.dropFirst().dropLast()), whole: value)
        guard let first = items.first else {
            throw PolicyValueError("policy service '\(LogEscape.escape(value))': no endpoint in the braces")
        }
        guard !first.hasPrefix("{") else {
            throw PolicyValueError("policy service '\(LogEscape.escape(value))': the endpoint must come first")
        }
        var settings = try with(endpoint: PolicyServiceEndpoint(parsing: first), base: base)
        for item in items.dropFirst() {
            try settings.apply(item)
        }
        return settings
    }

    /// The value in the per-service form, every setting spelled out (for check-config).
    public var description: String {
        "{ \(endpoint), timeout=\(Self.show(timeout)), max_idle=\(Self.show(maxIdle)), max_ttl=\(Self.show(maxTTL)), "
            + "try_limit=\(tryLimit), retry_delay=\(Self.show(retryDelay)), request_limit=\(requestLimit), "
            + "{ default_action = \(defaultAction) }, { policy_context = \(policyContext) } }"
    }

    private static let separators: Set<Character> = [" ", ",", "\t", "\r", "\n"]

    private static func with(endpoint: PolicyServiceEndpoint, base: PolicyServiceSettings?) -> PolicyServiceSettings {
        guard var settings = base else { return PolicyServiceSettings(endpoint: endpoint) }
        settings.endpoint = endpoint
        return settings
    }

    /// Postfix's list syntax: items separated by spaces or commas; a `{...}` group is one item (braces nest).
    private static func tokens(_ text: String, whole: String) throws(PolicyValueError) -> [String] {
        var items: [String] = []
        var current = ""
        var depth = 0
        for ch in text {
            if depth == 0, separators.contains(ch) {
                if !current.isEmpty { items.append(current) }
                current = ""
                continue
            }
            if ch == "{" {
                depth += 1
            } else if ch == "}" {
                guard depth > 0 else {
                    throw PolicyValueError("policy service '\(LogEscape.escape(whole))': a '}' without its '{'")
                }
                depth -= 1
            }
            current.append(ch)
        }
        guard depth == 0 else { throw PolicyValueError("policy service '\(LogEscape.escape(whole))': a '{' without its '}'") }
        if !current.isEmpty { items.append(current) }
        return items
    }

    private mutating func apply(_ item: String) throws(PolicyValueError) {
        var text = item
        let braced = text.hasPrefix("{")
        if braced {
            guard text.hasSuffix("}") else {
                throw PolicyValueError("policy service setting '\(LogEscape.escape(item))': text after the '}'")
            }
            text = String(text.dropFirst().dropLast()).trimmingPolicySpaces()
        }
        guard let equals = text.firstIndex(of: "=") else {
            throw PolicyValueError("policy service setting '\(LogEscape.escape(item))' is not name=value (a value with spaces "
                + "or commas goes in braces: { default_action = 451 4.3.5 Try again later })")
        }
        let name = String(text[..<equals]).trimmingPolicySpaces()
        let value = String(text[text.index(after: equals)...]).trimmingPolicySpaces()
        let shown = "policy service setting \(LogEscape.escape(name))='\(LogEscape.escape(value))'"
        switch name {
        case "timeout": timeout = try Self.seconds(value, shown, min: 0, inclusive: false, max: Self.maxTimeout)
        case "max_idle": maxIdle = try Self.seconds(value, shown, min: 0, inclusive: false, max: Self.maxIdleLimit)
        case "max_ttl": maxTTL = try Self.seconds(value, shown, min: 0, inclusive: false, max: Self.maxTTLLimit)
        case "retry_delay": retryDelay = try Self.seconds(value, shown, min: 0, inclusive: true, max: Self.maxTimeout)
        case "try_limit": tryLimit = try Self.count(value, shown, min: 1, max: Self.maxTryLimit)
        case "request_limit": requestLimit = try Self.count(value, shown, min: 0, max: 1_000_000)
        case "default_action":
            guard !value.isEmpty else { throw PolicyValueError("\(shown): an action is needed (DUNNO, or 451 4.3.5 text)") }
            defaultAction = try Self.text(value, shown)
        case "policy_context": policyContext = try Self.text(value, shown)
        default:
            throw PolicyValueError("policy service setting '\(LogEscape.escape(name))' is unknown (known: timeout, max_idle, "
                + "max_ttl, try_limit, retry_delay, request_limit, default_action, policy_context)")
        }
    }

    /// Postfix's time syntax: a number with an optional unit, s (the default), m, h, d or w; a fraction is
    /// accepted too (0.5s).
    static func seconds(_ value: String, _ shown: String, min: Double, inclusive: Bool, max: Double) throws(PolicyValueError) -> Double {
        var digits = Substring(value)
        var unit: Double = 1
        if let last = digits.last, !last.isNumber {
            switch last {
            case "s": unit = 1
            case "m": unit = 60
            case "h": unit = 3600
            case "d": unit = 86400
            case "w": unit = 7 * 86400
            default: throw PolicyValueError("\(shown): the unit is s, m, h, d or w")
            }
            digits = digits.dropLast()
        }
        guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == ".") }), let n = Double(digits) else {
            throw PolicyValueError("\(shown): expected a time such as 10s, 5m or 1h")
        }
        let seconds = n * unit
        guard inclusive ? seconds >= min : seconds > min, seconds <= max else {
            throw PolicyValueError("\(shown): expected \(inclusive ? "at least" : "more than") \(show(min)) and at most \(show(max))")
        }
        return seconds
    }

    static func count(_ value: String, _ shown: String, min: Int, max: Int) throws(PolicyValueError) -> Int {
        guard let n = Int(value), value.allSatisfy({ $0.isASCII && $0.isNumber }), n >= min, n <= max else {
            throw PolicyValueError("\(shown): expected a whole number from \(min) to \(max)")
        }
        return n
    }

    static func text(_ value: String, _ shown: String) throws(PolicyValueError) -> String {
        guard value.utf8.count <= maxTextBytes, !value.utf8.contains(where: { $0 < 0x20 || $0 == 0x7f }) else {
            throw PolicyValueError("\(shown): at most \(maxTextBytes) bytes, without control characters")
        }
        return value
    }

    /// `10s`, `0.5s`, `300s`: seconds as a person would write them.
    static func show(_ seconds: Double) -> String {
        seconds == seconds.rounded() && seconds < 1e15 ? "\(Int(seconds))s" : "\(seconds)s"
    }
}

private extension String {
    func trimmingPolicySpaces() -> String {
        let blank: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\r" || $0 == "\n" }
        guard let start = firstIndex(where: { !blank($0) }), let end = lastIndex(where: { !blank($0) }) else { return "" }
        return String(self[start...end])
    }
}
