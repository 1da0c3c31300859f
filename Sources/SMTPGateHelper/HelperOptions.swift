#if canImport(Glibc)
import Glibc
#endif
import NIOCore
import SMTPGateCore

/// Validation of the command line's values, kept out of the executable so it can be tested.
public enum HelperOptions {
    public static let defaultPort = 114

    /// `ADDR`, `ADDR:PORT`, `[V6]`, `[V6]:PORT`, or a bare IPv6 address (which takes the default port).
    /// Literal addresses only: the helper never resolves names.
    public static func listenAddress(_ text: String, defaultPort: Int = defaultPort) throws(HelperError) -> SocketAddress {
        var host = Substring(text)
        var portText: Substring?
        if host.hasPrefix("[") {
            guard let close = host.firstIndex(of: "]") else { throw bad(text, "missing ] after an IPv6 address") }
            let rest = host[host.index(after: close)...]
            host = host[host.index(after: host.startIndex)..<close]
            if !rest.isEmpty {
                guard rest.hasPrefix(":") else { throw bad(text, "expected :PORT after ]") }
                portText = rest.dropFirst()
            }
            guard host.contains(":") else { throw bad(text, "brackets are for IPv6 addresses") }
        } else if host.filter({ $0 == ":" }).count == 1 {
            let colon = host.firstIndex(of: ":")!
            portText = host[host.index(after: colon)...]
            host = host[..<colon]
        }
        guard let bytes = AddressBytes.parse(String(host)) else {
            throw bad(text, "not an IPv4 or IPv6 address (host names are not resolved)")
        }
        var port = defaultPort
        if let portText {
            guard !portText.isEmpty, portText.utf8.count <= 5, portText.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
                  let p = Int(portText), (1...65535).contains(p) else { throw bad(text, "port must be 1-65535") }
            port = p
        }
        do {
            return try SocketAddress(ipAddress: AddressBytes.format(bytes), port: port)
        } catch {
            throw bad(text, "\(error)")
        }
    }

    public static func allow(_ text: String) throws(HelperError) -> CIDR {
        do {
            return try CIDR(parsing: text)
        } catch {
            throw HelperError("--allow: \(error.description)")
        }
    }

    /// Reads the v2 key with the rules the proxy's `remote_udp_key_file` follows too.
    public static func keyFile(_ path: String) throws(HelperError) -> HelperKey {
        do {
            return try HelperKeyFile.read(path)
        } catch {
            throw HelperError("--key-file \(error)")
        }
    }

    /// The whole command line's worth of values, validated: what `smtpgate-helper` passes in, as text.
    public static func configuration(listen: [String], allow: [String], keyFile: String?, legacySecret: String?,
                                     replayCache: Int = HelperPolicy.defaultReplayCapacity,
                                     window: Int = Int(V2Packet.defaultWindow)) throws(HelperError) -> HelperServerConfiguration {
        guard !listen.isEmpty else { throw HelperError("at least one --listen ADDR[:PORT] is needed") }
        guard !allow.isEmpty else {
            throw HelperError("at least one --allow CIDR is needed (the proxies' addresses; nothing else is answered)")
        }
        guard keyFile != nil || legacySecret != nil else {
            throw HelperError("give --key-file (version 2 queries) or --legacy-secret (0x0402 queries), or both")
        }
        var addresses: [SocketAddress] = []
        for text in listen {
            let address = try listenAddress(text)
            guard !addresses.contains(address) else { throw HelperError("--listen \(text) given twice") }
            addresses.append(address)
        }
        var prefixes: [CIDR] = []
        for text in allow { prefixes.append(try Self.allow(text)) }
        let secret = try legacySecret.map { text throws(HelperError) in try Self.legacySecret(text) }
        let key = try keyFile.map { path throws(HelperError) in try Self.keyFile(path) }
        let policy = HelperPolicy(allow: AllowList(prefixes), legacySecret: secret, key: key,
                                  window: try Self.window(window), replayCapacity: try Self.replayCache(replayCache))
        return HelperServerConfiguration(listen: addresses, policy: policy)
    }

    /// A decimal u32; 0 means the queries carry no secret.
    public static func legacySecret(_ text: String) throws(HelperError) -> UInt32 {
        guard !text.isEmpty, text.utf8.count <= 10, text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
              let n = UInt32(text) else {
            throw HelperError("--legacy-secret must be a number 0-4294967295, not \(CIDR.ParseError.show(text))")
        }
        return n
    }

    /// 1 ... 3600 seconds.
    public static func window(_ seconds: Int) throws(HelperError) -> UInt64 {
        guard (1...3600).contains(seconds) else { throw HelperError("--window must be 1-3600 seconds, not \(seconds)") }
        return UInt64(seconds)
    }

    /// 1,024 ... 16,777,216 nonces (about 40 bytes each).
    public static func replayCache(_ n: Int) throws(HelperError) -> Int {
        guard (1024...(1 << 24)).contains(n) else { throw HelperError("--replay-cache must be 1024-16777216 nonces, not \(n)") }
        return n
    }

    private static func bad(_ text: String, _ why: String) -> HelperError {
        HelperError("--listen \(CIDR.ParseError.show(text)): \(why)")
    }
}
