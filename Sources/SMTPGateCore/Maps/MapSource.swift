/// The source format shared by postmap(1), cidr_table(5), regexp_table(5) and pcre_table(5): blank
/// lines and lines whose first non-whitespace character is '#' are ignored (they neither end nor
/// continue an entry); a line starting with whitespace continues the one before, joined as read (its
/// leading whitespace kept, the newline dropped). Everything is bounded, since a map is an
/// administrator's file that a typo, or a generator gone wrong, can make hostile.
enum MapSource {
    /// Splits `bytes` into logical lines. Refused, naming the line: a NUL byte, invalid UTF-8, a line
    /// (physical or logical) over `AccessMaps.maxLineBytes`, a continuation with nothing to continue,
    /// and more than `AccessMaps.maxEntries` entries; and a file over `AccessMaps.maxFileBytes`.
    static func lines(_ bytes: [UInt8], file: String) throws(AccessMapError) -> [MapSourceLine] {
        guard bytes.count <= AccessMaps.maxFileBytes else {
            throw AccessMapError(file: file, line: nil, message: "the file is \(bytes.count) bytes; at most \(AccessMaps.maxFileBytes)")
        }
        var out = [MapSourceLine]()
        var current: [UInt8] = []
        var currentNumber = 0
        var number = 0
        var start = 0
        while start < bytes.count {
            number += 1
            let end = bytes[start...].firstIndex(of: UInt8(ascii: "\n")) ?? bytes.count
            let line = bytes[start..<end]
            start = end + 1
            guard line.count <= AccessMaps.maxLineBytes else {
                throw AccessMapError(file: file, line: number, message: "the line is \(line.count) bytes; at most \(AccessMaps.maxLineBytes)")
            }
            guard !line.contains(0) else {
                throw AccessMapError(file: file, line: number, message: "NUL byte in the line")
            }
            guard String(validating: line, as: UTF8.self) != nil else {
                throw AccessMapError(file: file, line: number, message: "the line is not valid UTF-8")
            }
            guard let first = line.firstIndex(where: { !isSpace($0) }), line[first] != UInt8(ascii: "#") else { continue }
            if first != line.startIndex {
                guard !current.isEmpty else {
                    throw AccessMapError(file: file, line: number, message: "a line starting with whitespace continues an entry, but no entry precedes it")
                }
                guard current.count + line.count <= AccessMaps.maxLineBytes else {
                    throw AccessMapError(file: file, line: currentNumber, message: "the entry with its continuation lines is over \(AccessMaps.maxLineBytes) bytes")
                }
                current += line
                continue
            }
            try flush()
            current = Array(line)
            currentNumber = number
        }
        try flush()
        return out

        func flush() throws(AccessMapError) {
            guard !current.isEmpty else { return }
            guard out.count < AccessMaps.maxEntries else {
                throw AccessMapError(file: file, line: currentNumber, message: "more than \(AccessMaps.maxEntries) entries")
            }
            out.append(MapSourceLine(number: currentNumber, text: String(decoding: current, as: UTF8.self)))
        }
    }

    /// C's isspace: Postfix's ISSPACE, so a CRLF file's CR is whitespace and trimmed from values.
    @inline(__always)
    static func isSpace(_ b: UInt8) -> Bool {
        b == 0x20 || (b >= 0x09 && b <= 0x0d)
    }

    static func trimmed(_ s: Substring) -> Substring {
        let u = s.utf8
        guard let a = u.firstIndex(where: { !isSpace($0) }), let b = u.lastIndex(where: { !isSpace($0) }) else {
            return s[s.endIndex...]
        }
        return s[a..<u.index(after: b)]
    }
}
