/// One entry of a regexp: or pcre: table, kept in file order with the line it came from (a match that
/// hits PCRE's limits says which pattern did).
enum PatternRule: Sendable {
    /// `/pattern/flags result` (`!/pattern/flags result`: when the key does not match).
    case match(PCRERegex, negated: Bool, PatternResult, line: Int)
    /// `if /pattern/flags` (or `if !/pattern/`) up to its `endif`, at index `end` of the rule list.
    case block(PCRERegex, negated: Bool, end: Int, line: Int)
    case endif
}
