/// Reads a text log line's body as a logfmt reader would: `key=value` pairs, a value bare or in quotes
/// with `\"` inside; `\xHH` escapes are left as written. Words without `=` are skipped. A line the
/// renderer cannot have written (an open quote) reads as nil, so a test fails instead of guessing.
enum LogfmtReader {
    static func pairs(_ body: Substring) -> [(String, String)]? {
        var out: [(String, String)] = []
        var s = body.unicodeScalars[...]
        while !s.isEmpty {
            while s.first == " " { s.removeFirst() }
            guard !s.isEmpty else { break }
            var key = ""
            while let c = s.first, c != "=", c != " " { key.unicodeScalars.append(c); s.removeFirst() }
            guard s.first == "=" else { continue }
            s.removeFirst()
            var value = ""
            if s.first == "\"" {
                s.removeFirst()
                var closed = false
                while let c = s.popFirst() {
                    if c == "\\", s.first == "\"" {
                        value.unicodeScalars.append(s.removeFirst())
                    } else if c == "\"" {
                        closed = true
                        break
                    } else {
                        value.unicodeScalars.append(c)
                    }
                }
                guard closed, s.isEmpty || s.first == " " else { return nil }
            } else {
                while let c = s.first, c != " " { value.unicodeScalars.append(c); s.removeFirst() }
            }
            out.append((key, value))
        }
        return out
    }

    /// The pairs of a whole rendered line: after `TIMESTAMP PROGRAM[PID]: LEVEL EVENT`.
    static func pairs(line: String) -> [(String, String)]? {
        let parts = line.split(separator: " ", maxSplits: 4, omittingEmptySubsequences: false)
        return parts.count == 5 ? pairs(parts[4]) : (parts.count == 4 ? [] : nil)
    }
}
