extension ConfigParser {
    /// Every error `check-config` can find in one pass over the file: the first error, then the file parsed
    /// again without that line, and so on. A later error can be a consequence of an earlier one's line
    /// missing (a section's only option), so the first is always the one to fix first. An error without a
    /// line, on a section header or on a line already reported ends the list; so do `limit` errors.
    public static func errors(_ text: String, file: String, limit: Int = 50) -> [ConfigError] {
        // As ConfigBlocks splits: "\r\n" is one Character in Swift.
        var lines = text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" }).map(String.init)
        var found: [ConfigError] = []
        var reported = Set<Int>()
        while found.count < limit {
            do {
                _ = try parseFile(lines.joined(separator: "\n"), file: file)
                return found
            } catch {
                found.append(error)
                guard let line = error.line, line >= 1, line <= lines.count, reported.insert(line).inserted,
                      // Without its header a section's options would land in the one before: the rest
                      // of the list would be the parser's confusion, not the file's errors.
                      !lines[line - 1].drop(while: { $0 == " " || $0 == "\t" }).hasPrefix("[") else { return found }
                lines[line - 1] = ""
            }
        }
        return found
    }
}

/// The option a misspelt name most likely meant, for "unknown option" errors.
public enum OptionSuggestion {
    /// Names longer than this get no suggestion: the comparison is quadratic in the length.
    static let maxLength = 64

    public static func nearest(_ name: String, among names: some Sequence<String>) -> String? {
        let a = Array(name.lowercased().utf8)
        guard !a.isEmpty, a.count <= maxLength else { return nil }
        var best: (name: String, distance: Int)?
        // Sorted, so a tie always goes to the same name.
        for candidate in names.sorted() {
            let b = Array(candidate.utf8)
            guard abs(b.count - a.count) <= 3 else { continue }
            let d = distance(a, b)
            if d < (best?.distance ?? Int.max) { best = (candidate, d) }
        }
        // A third of the name may be wrong, at most 3 edits: "ratelimit_conections", "timout_idle", "max_per_hots".
        // Distance 0 is a name in the wrong case ("Port"): option names are lower case.
        guard let best, best.distance <= min(3, max(1, a.count / 3)) else { return nil }
        return best.name
    }

    /// Levenshtein distance with adjacent transpositions (optimal string alignment).
    static func distance(_ a: [UInt8], _ b: [UInt8]) -> Int {
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var prev2 = [Int](repeating: 0, count: b.count + 1)
        var prev = Array(0...b.count)
        var row = [Int](repeating: 0, count: b.count + 1)
        for i in 1...a.count {
            row[0] = i
            for j in 1...b.count {
                let cost = a[i - 1] == b[j - 1] ? 0 : 1
                row[j] = min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + cost)
                if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] { row[j] = min(row[j], prev2[j - 2] + 1) }
            }
            (prev2, prev, row) = (prev, row, prev2)
        }
        return prev[b.count]
    }
}
