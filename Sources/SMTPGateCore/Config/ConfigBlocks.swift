/// A configuration file split into its global block and its sections, every line located, before any
/// option is read: `[listener NAME]` and `[forward NAME]` headers, `option value` lines, `#`/`;` comments.
struct ConfigBlocks {
    enum Kind: String, Sendable {
        case listener
        case forward
    }

    struct Entry {
        let name: String
        let value: String
        let line: Int
    }

    struct Section {
        let kind: Kind
        let name: String
        let line: Int
        var options: [Entry] = []
    }

    var global: [Entry] = []
    var sections: [Section] = []

    /// Listeners and forwards together; each takes a handful of sockets and a log name.
    static let maxSections = 256
    static let maxNameBytes = 64

    static func read(_ text: String, file: String) throws(ConfigError) -> ConfigBlocks {
        guard text.utf8.count <= ConfigParser.maxFileBytes else {
            throw ConfigError(file: file, line: nil, message: "file is larger than \(ConfigParser.maxFileBytes) bytes")
        }
        var blocks = ConfigBlocks()
        var names: [String: Int] = [:]
        var lineNo = 0
        // "\r\n" is a single Character in Swift, so both line ends are named.
        for rawLine in text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" }) {
            lineNo += 1
            guard rawLine.utf8.count <= ConfigParser.maxLineBytes else {
                throw ConfigError(file: file, line: lineNo, message: "line is longer than \(ConfigParser.maxLineBytes) bytes")
            }
            let line = rawLine.trimmingSpaces()
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
            if line.utf8.contains(0) {
                throw ConfigError(file: file, line: lineNo, message: "line contains a NUL byte")
            }
            if line.hasPrefix("[") {
                let section = try header(line, line: lineNo, file: file)
                if let earlier = names[section.name] {
                    throw ConfigError(file: file, line: lineNo, message: "a section named '\(section.name)' is already on line \(earlier) (listener and forward names are one namespace: they name log lines)")
                }
                guard blocks.sections.count < maxSections else {
                    throw ConfigError(file: file, line: lineNo, message: "more than \(maxSections) sections")
                }
                names[section.name] = lineNo
                blocks.sections.append(section)
                continue
            }
            let entry: Entry
            if let sep = line.firstIndex(where: { $0 == " " || $0 == "\t" }) {
                entry = Entry(name: String(line[..<sep]), value: String(line[sep...]).trimmingSpaces(), line: lineNo)
            } else {
                entry = Entry(name: line, value: "", line: lineNo)
            }
            if blocks.sections.isEmpty {
                blocks.global.append(entry)
            } else {
                blocks.sections[blocks.sections.count - 1].options.append(entry)
            }
        }
        return blocks
    }

    /// `[listener NAME]` or `[forward NAME]`, spaces allowed inside the brackets.
    static func header(_ line: String, line lineNo: Int, file: String) throws(ConfigError) -> Section {
        func fail(_ message: String) -> ConfigError { ConfigError(file: file, line: lineNo, message: message) }
        guard line.hasSuffix("]") else {
            throw fail("a section header is [listener NAME] or [forward NAME], got '\(LogEscape.escape(line))'")
        }
        let words = line.dropFirst().dropLast().split(whereSeparator: { $0 == " " || $0 == "\t" })
        guard words.count == 2 else {
            throw fail("a section header is [listener NAME] or [forward NAME], got '\(LogEscape.escape(line))'")
        }
        guard let kind = Kind(rawValue: words[0].lowercased()) else {
            throw fail("unknown section kind '\(LogEscape.escape(String(words[0])))' (known: listener, forward)")
        }
        let name = String(words[1])
        guard isName(name) else {
            throw fail("section name '\(LogEscape.escape(name))': expected 1 to \(maxNameBytes) letters, digits, '-', '_' or '.'")
        }
        return Section(kind: kind, name: name, line: lineNo)
    }

    static func isName(_ s: String) -> Bool {
        !s.isEmpty && s.utf8.count <= maxNameBytes && s.utf8.allSatisfy { b in
            (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) || b == 0x2d || b == 0x5f || b == 0x2e
        }
    }

    /// Two listening ends on one port where one address covers the other: with SO_REUSEPORT (which every
    /// listener sets, one socket per event loop) the kernel would bind both and split connections between
    /// them, so the file is refused instead.
    static func checkEndpoints(_ file: ConfigFile, file path: String) throws(ConfigError) {
        var ends: [(name: String, line: Int?, address: IPAddress, ports: ClosedRange<Int>)] = []
        for l in file.listeners { ends.append((l.name, l.line, l.config.bindAddress, l.config.port...l.config.port)) }
        for f in file.forwards { ends.append((f.name, f.line, f.config.bindAddress, f.ports.lower...f.ports.upper)) }
        for (i, a) in ends.enumerated() {
            for b in ends[..<i] where a.ports.overlaps(b.ports) && covers(a.address, b.address) {
                // Named by the first port both have, not the first of a range.
                let port = max(a.ports.lowerBound, b.ports.lowerBound)
                throw ConfigError(file: path, line: a.line, message: "'\(a.name)' listens on \(a.address.withPort(port)), which '\(b.name)'\(b.line.map { " (line \($0))" } ?? "") already listens on \(b.address.withPort(port)) covers: give one of them another port or address")
            }
        }
    }

    /// Whether a socket bound to one address would receive connections meant for the other.
    static func covers(_ a: IPAddress, _ b: IPAddress) -> Bool {
        if a == b { return true }
        // An IPv6 wildcard socket is dual-stack: it takes IPv4 connections too.
        if a == IPAddress.anyV6 || b == IPAddress.anyV6 { return true }
        if a.family == b.family, a == IPAddress.anyV4 || b == IPAddress.anyV4 { return true }
        return false
    }
}
