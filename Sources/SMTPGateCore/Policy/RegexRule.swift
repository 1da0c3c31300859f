/// One of smtp-gated's `regex_reject_*` / `regex_enforce_*` options: a pattern the HELO name, the sender or
/// a recipient must not match (reject) or must match (enforce).
public struct RegexRule: Sendable, Equatable {
    public enum Action: String, Sendable, CaseIterable {
        case reject, enforce
    }

    public enum Field: String, Sendable, CaseIterable {
        case helo
        case mailFrom = "mail_from"
        case rcptTo = "rcpt_to"
    }

    public var action: Action
    public var field: Field
    public var regex: PCRERegex

    public init(action: Action, field: Field, regex: PCRERegex) {
        self.action = action
        self.field = field
        self.regex = regex
    }

    public var optionName: String { "regex_\(action.rawValue)_\(field.rawValue)" }

    static func compile(_ pattern: String) throws(OptionValueError) -> PCRERegex {
        do {
            return try PCRERegex(pattern)
        } catch {
            let why = LogEscape.escape(error.description)
            throw OptionValueError("bad regular expression: " + why)
        }
    }

    static func order(_ r: RegexRule) -> Int {
        optionNames.firstIndex { $0.0 == r.action && $0.1 == r.field } ?? 0
    }

    public static let optionNames: [(Action, Field)] = Action.allCases.flatMap { a in Field.allCases.map { (a, $0) } }

    /// What the rule is matched against: the HELO argument, or the address without its angle brackets
    /// (empty for the null sender), as the log shows it.
    public static func subject(_ point: PolicyPoint) -> (Field, String)? {
        switch point {
        case .hello(let name): return (.helo, name)
        case .mail(let from): return (.mailFrom, unbracketed(from))
        case .rcpt(let to): return (.rcptTo, unbracketed(to))
        case .data, .endOfData: return nil
        }
    }

    public static func unbracketed(_ path: String) -> String {
        guard path.hasPrefix("<"), path.hasSuffix(">"), path.count >= 2 else { return path }
        return String(path.dropFirst().dropLast())
    }
}
