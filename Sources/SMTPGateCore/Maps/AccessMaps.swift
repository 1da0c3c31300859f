/// Loading Postfix access maps and looking keys up in them with access(5)'s DUNNO rule.
public enum AccessMaps {
    public static let maxFileBytes = 64 << 20
    /// A physical line, and a logical one with its continuation lines.
    public static let maxLineBytes = 4_096
    public static let maxEntries = 2_000_000
    /// regexp: and pcre: lines: every lookup may try each pattern in turn, and each is a compiled PCRE2
    /// program, so far fewer than a texthash file's entries.
    public static let maxPatternRules = 100_000
    /// `if` ... `endif` blocks inside one another in cidr:, regexp: and pcre: tables.
    public static let maxNesting = 32

    /// Types that are Postfix's indexed files: postmap builds them from a source file, and that
    /// source file is what SMTPGate reads.
    static let indexedTypes: Set<String> = ["btree", "lmdb", "cdb", "dbm", "sdbm"]
    /// Types that ask a server or a service.
    static let serviceTypes: Set<String> = ["ldap", "mysql", "pgsql", "sqlite", "memcache", "tcp", "socketmap", "nis", "nisplus", "netinfo", "unix", "mongodb", "pipemap", "unionmap", "randmap", "static", "inline", "internal", "environ", "fail"]

    /// Parses "texthash:/path", "hash:/path", "cidr:/path", "regexp:/path" and "pcre:/path", reads the
    /// file with `read` (given the path; it should itself stop reading past `maxFileBytes`) and loads
    /// it; the whole file is parsed now, so every problem is an error naming its file and line.
    ///
    /// `hash:` is read as `texthash:`: SMTPGate reads the postmap SOURCE file (`/etc/postfix/access`),
    /// never the `.db` that postmap builds from it, so a Postfix main.cf's `hash:/etc/postfix/access`
    /// can be used as written, and editing the source file is enough (no postmap run). Other types
    /// (btree, lmdb, cdb, ldap, mysql, proxy:, inline `{...}`, ...) are errors naming the type and what
    /// to use instead. Postfix's `$name` expansion (`$config_directory`) is not done.
    /// `redirects`: REDIRECT is an action (only `check_destination_access`, on cidr: and texthash: tables).
    public static func load(_ spec: String, redirects: Bool = false, read: (String) throws -> [UInt8]) throws(AccessMapError) -> any AccessTable {
        guard let colon = spec.firstIndex(of: ":") else {
            throw AccessMapError(file: spec, line: nil, message: "expected TYPE:/path (texthash:, hash:, cidr:, regexp: or pcre:)")
        }
        let type = spec[..<colon].lowercased()
        let path = String(spec[spec.index(after: colon)...])
        let kind: AccessTableKind
        switch type {
        case "texthash", "hash": kind = .texthash
        case "cidr": kind = .cidr
        case "regexp": kind = .regexp
        case "pcre": kind = .pcre
        default:
            throw AccessMapError(file: spec, line: nil, message: unsupported(type))
        }
        if path.hasPrefix("{") {
            throw AccessMapError(file: spec, line: nil, message: "inline tables (\(type):{ rule, ... }) are not supported: put the rules in a file")
        }
        guard !path.isEmpty else { throw AccessMapError(file: spec, line: nil, message: "no file after \(type):") }
        if path.contains("$") {
            throw AccessMapError(file: path, line: nil, message: "Postfix's $name expansion is not done here: write the path out")
        }
        let bytes: [UInt8]
        do {
            bytes = try read(path)
        } catch {
            throw AccessMapError(file: path, line: nil, message: "cannot read it: \(error)")
        }
        switch kind {
        case .texthash: return try TextHashTable(bytes: bytes, file: path, source: spec, redirects: redirects)
        case .cidr: return try CIDRTable(bytes: bytes, file: path, source: spec, redirects: redirects)
        case .regexp, .pcre:
            if redirects {
                throw AccessMapError(file: spec, line: nil, message: "check_destination_access takes cidr: or texthash: maps (destinations are addresses)")
            }
            return try PatternTable(bytes: bytes, file: path, source: spec, kind: kind)
        }
    }

    /// Tries `keys` in order, as smtpd does for one check_*_access: on a texthash table the first key
    /// found wins, and a DUNNO found is returned as `.found(.dunno)` (the caller stops searching this
    /// map and goes on with the next restriction, and can tell "DUNNO" from "absent" in its log); a
    /// pattern table (cidr, regexp, pcre) is asked only `keys[0]`, the full key, because Postfix never
    /// gives partial keys (parent domains, shorter networks, `user@`) to a pattern table. A failure
    /// stops the search. For check_client_access use `lookupClient`, which asks a pattern table twice.
    public static func lookup(_ table: any AccessTable, keys: [String]) -> AccessTableResult {
        guard table.kind == .texthash else { return keys.first.map { table.find($0) } ?? .notFound }
        for key in keys {
            let result = table.find(key)
            if result != .notFound { return result }
        }
        return .notFound
    }

    /// check_client_access: on texthash the keys of `AccessKeys.client`; on a pattern table the two
    /// full keys Postfix gives it, the client name (when there is one) and then the address.
    public static func lookupClient(_ table: any AccessTable, name: String?, address: String) -> AccessTableResult {
        guard table.kind != .texthash else { return lookup(table, keys: AccessKeys.client(name: name, address: address)) }
        for key in [name ?? "", AccessKeys.canonicalAddress(address) ?? address] where !key.isEmpty {
            let result = table.find(key)
            if result != .notFound { return result }
        }
        return .notFound
    }

    static func unsupported(_ type: String) -> String {
        if type == "proxy" {
            return "proxy: is Postfix's proxymap service; SMTPGate reads the table itself: write proxy:hash:/path as hash:/path"
        }
        if indexedTypes.contains(type) {
            return "\(type): is an indexed file postmap builds; SMTPGate reads the source file postmap was given: write texthash:/path/to/source (or hash:, read the same way)"
        }
        if serviceTypes.contains(type) {
            return "\(type): tables are not supported: export the table to a file and use texthash:, cidr:, regexp: or pcre:"
        }
        return "unknown table type \(AccessMapError.quote(type)): use texthash:, hash: (read as texthash:), cidr:, regexp: or pcre:"
    }
}
