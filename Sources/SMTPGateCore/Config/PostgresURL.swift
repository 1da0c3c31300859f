/// `state_store postgresql://USER[:PASSWORD]@HOST[:PORT]/DB` or, through a unix socket,
/// `postgresql:///DB?host=/SOCKET/DIR&user=USER[&port=PORT]`. Parsed here (bounded, no libpq) so the
/// configuration check names what is wrong, and shown without its password.
public struct PostgresURL: Sendable, Equatable, CustomStringConvertible {
    public static let maxLength = 4096
    static let maxPart = 1024

    public var user: String
    public var password: String?
    /// A TCP host name or address (IPv6 without brackets); nil for a unix socket.
    public var host: String?
    public var port: Int
    /// The directory holding the server's socket (`.s.PGSQL.PORT`); nil for TCP.
    public var socketDirectory: String?
    public var database: String

    /// The socket file PostgreSQL listens on in `socketDirectory`.
    public var socketPath: String? { socketDirectory.map { "\($0 == "/" ? "" : $0)/.s.PGSQL.\(port)" } }

    /// The URL without its password: safe to log and to show in check-config.
    public var description: String {
        let u = Self.encode(user)
        if let dir = socketDirectory {
            return "postgresql:///\(Self.encode(database))?host=\(Self.encode(dir, keep: "/"))&user=\(u)" + (port == 5432 ? "" : "&port=\(port)")
        }
        let h = host.map { $0.contains(":") ? "[\($0)]" : $0 } ?? ""
        return "postgresql://\(u)\(password == nil ? "" : ":***")@\(h)\(port == 5432 ? "" : ":\(port)")/\(Self.encode(database))"
    }

    public struct ParseError: Error, CustomStringConvertible, Equatable {
        public let description: String
        init(_ d: String) { description = d }
    }

    public static func parse(_ text: String) throws(ParseError) -> PostgresURL {
        let scheme = "postgresql://"
        guard text.hasPrefix(scheme) else { throw ParseError("a PostgreSQL state_store starts with \(scheme)") }
        guard text.utf8.count <= maxLength else { throw ParseError("the URL is longer than \(maxLength) bytes") }
        guard text.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value != 0x7f }) else {
            throw ParseError("the URL has spaces or control characters; percent-encode them")
        }
        var rest = Substring(text.dropFirst(scheme.count))
        var query: Substring = ""
        if let q = rest.firstIndex(of: "?") {
            query = rest[rest.index(after: q)...]
            rest = rest[..<q]
        }
        guard let slash = rest.firstIndex(of: "/") else { throw ParseError("no database: expected postgresql://USER@HOST/DB") }
        let authority = rest[..<slash]
        let database = try decode(rest[rest.index(after: slash)...], "the database name")
        guard !database.isEmpty else { throw ParseError("no database: expected postgresql://USER@HOST/DB") }
        guard !database.contains("/") else { throw ParseError("the database name has a '/'") }

        var user = "", password: String?, host = "", portText: Substring?
        var hostPart = authority
        if let at = authority.lastIndex(of: "@") {
            let info = authority[..<at]
            hostPart = authority[authority.index(after: at)...]
            if let colon = info.firstIndex(of: ":") {
                user = try decode(info[..<colon], "the user name")
                password = try decode(info[info.index(after: colon)...], "the password")
            } else {
                user = try decode(info, "the user name")
            }
        }
        if hostPart.hasPrefix("[") {
            guard let close = hostPart.firstIndex(of: "]") else { throw ParseError("an IPv6 host lacks its ']'") }
            host = String(hostPart[hostPart.index(after: hostPart.startIndex)..<close])
            let after = hostPart[hostPart.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { throw ParseError("expected ':PORT' after the IPv6 host") }
                portText = after.dropFirst()
            }
        } else if let colon = hostPart.firstIndex(of: ":") {
            host = try decode(hostPart[..<colon], "the host")
            portText = hostPart[hostPart.index(after: colon)...]
        } else {
            host = try decode(hostPart, "the host")
        }

        var socketDirectory: String?
        if !query.isEmpty {
            for pair in query.split(separator: "&", omittingEmptySubsequences: true) {
                guard let eq = pair.firstIndex(of: "=") else { throw ParseError("the parameter '\(pair.prefix(40))' has no '='") }
                let name = pair[..<eq], value = pair[pair.index(after: eq)...]
                switch name {
                case "host":
                    let v = try decode(value, "host")
                    guard v.hasPrefix("/") else { throw ParseError("host= must be the absolute path of the socket directory") }
                    socketDirectory = v
                case "user": user = try decode(value, "user")
                case "password": password = try decode(value, "password")
                case "port": portText = value
                default: throw ParseError("unknown parameter '\(name.prefix(40))' (known: host, user, port, password)")
                }
            }
        }

        var port = 5432
        if let p = portText {
            guard let n = Int(p), (1...65535).contains(n) else { throw ParseError("the port must be 1 to 65535, got '\(p.prefix(20))'") }
            port = n
        }
        guard !user.isEmpty else { throw ParseError("no user: expected postgresql://USER@HOST/DB or ?user=USER") }
        if socketDirectory != nil {
            guard host.isEmpty else { throw ParseError("give either a host or host=/socket/dir, not both") }
        } else {
            guard !host.isEmpty else { throw ParseError("no host: expected postgresql://USER@HOST/DB or ?host=/socket/dir") }
        }
        let url = PostgresURL(user: user, password: password, host: socketDirectory == nil ? host : nil, port: port,
                              socketDirectory: socketDirectory, database: database)
        // sockaddr_un holds 108 bytes with the terminating NUL.
        if let path = url.socketPath, path.utf8.count >= 108 {
            throw ParseError("the socket path \(path) is longer than 107 bytes")
        }
        return url
    }

    private static func decode(_ s: Substring, _ what: String) throws(ParseError) -> String {
        guard s.utf8.count <= maxPart else { throw ParseError("\(what) is longer than \(maxPart) bytes") }
        var bytes: [UInt8] = []
        var it = Array(s.utf8)[...]
        while let b = it.popFirst() {
            if b == UInt8(ascii: "%") {
                guard it.count >= 2, let hi = hex(it.popFirst()!), let lo = hex(it.popFirst()!) else {
                    throw ParseError("\(what) has a bad percent escape")
                }
                bytes.append(hi << 4 | lo)
            } else {
                bytes.append(b)
            }
        }
        guard !bytes.contains(0), let out = String(validating: bytes, as: UTF8.self) else {
            throw ParseError("\(what) is not valid UTF-8 or has a NUL")
        }
        return out
    }

    private static func hex(_ b: UInt8) -> UInt8? {
        switch b {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return b - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return b - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return b - UInt8(ascii: "A") + 10
        default: return nil
        }
    }

    private static func encode(_ s: String, keep: String = "") -> String {
        var out = ""
        for b in s.utf8 {
            let c = Character(Unicode.Scalar(b))
            if b < 0x80, c.isLetter || c.isNumber || "-._~".contains(c) || keep.contains(c) {
                out.append(c)
            } else {
                out += "%" + String(b, radix: 16, uppercase: true).leftPadded(2)
            }
        }
        return out
    }
}

private extension String {
    func leftPadded(_ n: Int) -> String { count >= n ? self : String(repeating: "0", count: n - count) + self }
}
