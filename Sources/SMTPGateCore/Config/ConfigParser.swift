/// Reads smtp-gated syntax: `option value` per line, `#` or `;` starts a comment line.
public enum ConfigParser {
    /// Bounds on hostile or mistaken input (a binary file given as a config, say).
    static let maxFileBytes = 1 << 20
    static let maxLineBytes = 8192

    public static func parse(_ text: String, file: String) throws(ConfigError) -> Config {
        guard text.utf8.count <= maxFileBytes else {
            throw ConfigError(file: file, line: nil, message: "file is larger than \(maxFileBytes) bytes")
        }
        var config = Config()
        var seen: [String: Int] = [:]
        var lineNo = 0
        // "\r\n" is a single Character in Swift, so both line ends are named.
        for rawLine in text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" }) {
            lineNo += 1
            guard rawLine.utf8.count <= maxLineBytes else {
                throw ConfigError(file: file, line: lineNo, message: "line is longer than \(maxLineBytes) bytes")
            }
            let line = rawLine.trimmingSpaces()
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
            if line.utf8.contains(0) {
                throw ConfigError(file: file, line: lineNo, message: "line contains a NUL byte")
            }
            let name: String
            let value: String
            if let sep = line.firstIndex(where: { $0 == " " || $0 == "\t" }) {
                name = String(line[..<sep])
                value = String(line[sep...]).trimmingSpaces()
            } else {
                name = line
                value = ""
            }
            guard let option = Option.byName[name] else {
                throw ConfigError(file: file, line: lineNo, message: "unknown option '\(LogEscape.escape(name))'")
            }
            guard !value.isEmpty else {
                throw ConfigError(file: file, line: lineNo, message: "option '\(name)' needs a value")
            }
            if let earlier = seen[name] {
                throw ConfigError(file: file, line: lineNo, message: "option '\(name)' is already set on line \(earlier)")
            }
            seen[name] = lineNo
            do {
                try option.apply(&config, value)
            } catch {
                throw ConfigError(file: file, line: lineNo, message: "option '\(name)': \(error.message)")
            }
        }
        try validate(config, file: file, lines: seen)
        return config
    }

    static func validate(_ c: Config, file: String, lines: [String: Int]) throws(ConfigError) {
        guard let mode = c.mode else {
            throw ConfigError(file: file, line: nil, message: "option 'mode' is not set (this release supports: mode fixed)")
        }
        if mode == .fixed, c.fixedServer == nil {
            throw ConfigError(file: file, line: lines["mode"], message: "mode fixed needs fixed_server")
        }
        if let out = c.outgoingAddr, let server = c.fixedServer, out.family != server.family {
            throw ConfigError(file: file, line: lines["outgoing_addr"],
                              message: "outgoing_addr \(out) and fixed_server \(server) are of different address families")
        }
    }

    /// The effective configuration as `option value` lines, every option in table order.
    public static func render(_ config: Config) -> String {
        Option.all.map { opt in
            if let v = opt.show(config) { return "\(opt.name) \(v)" }
            return "# \(opt.name) (not set)"
        }.joined(separator: "\n") + "\n"
    }

    public static var optionNames: [String] { Option.all.map(\.name) }
}

extension StringProtocol {
    func trimmingSpaces() -> String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\r" }
        guard let start = firstIndex(where: { !isSpace($0) }) else { return "" }
        let end = lastIndex(where: { !isSpace($0) })!
        return String(self[start...end])
    }
}
