/// The result of a regexp: or pcre: rule: an action parsed once at load, or, when it substitutes
/// groups, a template parsed again after each match (it was checked at load with stand-in text, so
/// only what a group brings in can make it fail).
enum PatternResult: Sendable {
    case fixed(AccessAction)
    case substituted(ReplacementTemplate)
}
