/// A postmap(1) source file held in memory (Postfix's texthash:): a hash index of the folded keys
/// (`TextHashIndex`), so a lookup costs about the same in a 100-entry map and a 2,000,000-entry one,
/// and each distinct value parsed once into the actions the index points at (maps repeat a few
/// values many times).
struct TextHashTable: AccessTable {
    /// Warnings kept at most; a generated file with thousands of duplicates says so in one more line.
    static let maxWarnings = 100

    let source: String
    let warnings: [String]
    private let index: TextHashIndex
    private let actions: [AccessAction]

    var kind: AccessTableKind { .texthash }

    /// `key whitespace value` per logical line, as postmap reads it: the key ends at the first
    /// whitespace outside double quotes (a backslash escapes the next character) and is kept in that
    /// quoted form, case-folded; the value, surrounding whitespace removed, is parsed as an action.
    /// A duplicate key keeps the first entry and adds a warning, as postmap does. Where postmap warns
    /// and skips a line (no value, unbalanced quotes) this is an error: a skipped access entry is a
    /// hole in a policy.
    init(bytes: [UInt8], file: String, source: String, redirects: Bool = false) throws(AccessMapError) {
        let lines = try MapSource.lines(bytes, file: file)
        var index = TextHashIndex(capacity: lines.count)
        var actions = [AccessAction]()
        var actionIndex = [Substring: Int]()
        var entryLines = [Int]()  // by insertion order, for naming a duplicate's first line
        entryLines.reserveCapacity(lines.count)
        var warnings = [String]()
        var duplicates = 0
        for line in lines {
            let (key, value) = try Self.split(line, file: file)
            let valueIndex: Int
            if let known = actionIndex[value] {
                valueIndex = known
            } else {
                do {
                    actions.append(try AccessAction(parsing: String(value), redirects: redirects))
                } catch {
                    throw AccessMapError(file: file, line: line.number, message: error.message)
                }
                valueIndex = actions.count - 1
                actionIndex[value] = valueIndex
            }
            if let first = index.insert(Self.fold(key), value: valueIndex) {
                duplicates += 1
                if warnings.count < Self.maxWarnings {
                    warnings.append("\(file):\(line.number): duplicate entry \(AccessMapError.quote(key)) (first at line \(entryLines[first])): the first is used")
                }
                continue
            }
            if key.hasSuffix(":"), warnings.count < Self.maxWarnings {
                warnings.append("\(file):\(line.number): record is in \"key: value\" format; is this an alias file?")
            }
            entryLines.append(line.number)
        }
        if duplicates > Self.maxWarnings {
            warnings.append("\(file): \(duplicates) duplicate entries in all")
        }
        self.source = source
        self.warnings = warnings
        self.index = index
        self.actions = actions
    }

    func find(_ key: String) -> AccessTableResult {
        index.find(Self.fold(key)).map { .found(actions[$0]) } ?? .notFound
    }

    /// Keys are compared without case, as Postfix folds both the file's keys and the query. Most
    /// queries are lower case already, and skipping `lowercased()` for them keeps lookups cheap.
    static func fold(_ s: some StringProtocol) -> String {
        if s.utf8.contains(where: { ($0 >= 0x41 && $0 <= 0x5a) || $0 >= 0x80 }) { return s.lowercased() }
        return String(s)
    }

    private static func split(_ line: MapSourceLine, file: String) throws(AccessMapError) -> (Substring, Substring) {
        let text = line.text
        var inQuotes = false
        var escaped = false
        var end = text.utf8.endIndex
        for i in text.utf8.indices {
            let b = text.utf8[i]
            if escaped {
                escaped = false
            } else if b == UInt8(ascii: "\\") {
                escaped = true
            } else if b == UInt8(ascii: "\"") {
                inQuotes.toggle()
            } else if MapSource.isSpace(b), !inQuotes {
                end = i
                break
            }
        }
        guard !inQuotes else {
            throw AccessMapError(file: file, line: line.number, message: "unbalanced '\"' in \(AccessMapError.quote(text))")
        }
        let key = text[..<end]
        let value = MapSource.trimmed(text[end...])
        guard !value.isEmpty else {
            throw AccessMapError(file: file, line: line.number, message: "expected format: key whitespace value; \(AccessMapError.quote(key)) has no value")
        }
        return (key, value)
    }
}
