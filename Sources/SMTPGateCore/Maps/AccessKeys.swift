/// access(5)'s lookup orders, as the key lists smtpd tries against an indexed (here texthash) table;
/// `AccessMaps.lookup` gives a pattern table only the first. Keys keep the client's case: texthash
/// folds them itself, and regexp: and pcre: see the text as sent (Postfix 2.3 and later do not fold
/// for them).
public enum AccessKeys {
    /// DNS names are at most 253 bytes; a longer "domain" gets no parent keys, so a hostile 4 KiB name
    /// cannot make thousands of lookups.
    static let maxParentSearchBytes = 255

    /// check_sender_access and check_recipient_access: "user@domain", then "domain" and each parent
    /// domain ("sub.example.com", "example.com", "com": Postfix's parent_domain_matches_subdomains
    /// default includes smtpd_access_maps, so "example.com" also matches its subdomains and a
    /// ".example.com" key is never looked up), then "user@". An address literal domain
    /// ("user@[192.0.2.1]") is its own only key. The null sender ("" or "<>") is looked up as "<>"
    /// only (smtpd_null_access_lookup_key). One pair of angle brackets and a source route
    /// ("@relay:user@domain") are taken off first, as Postfix's address parsing does. An address with
    /// no "@" is looked up as "user", then "user@": Postfix would first add "@$myorigin", which
    /// SMTPGate does not know. Recipient delimiters are NOT supported: "user+foo@domain" is not also
    /// looked up as "user@domain" and "user@" (SMTPGate has no recipient_delimiter setting).
    public static func address(_ address: String) -> [String] {
        var a = Substring(address)
        if a.hasPrefix("<"), a.hasSuffix(">"), a.utf8.count >= 2 { a = a.dropFirst().dropLast() }
        if a.hasPrefix("@"), let colon = a.firstIndex(of: ":") { a = a[a.index(after: colon)...] }
        guard !a.isEmpty else { return ["<>"] }
        guard let at = a.lastIndex(of: "@") else { return unique([String(a), a + "@"]) }
        let domain = a[a.index(after: at)...]
        var keys = [String(a)]
        if !domain.isEmpty {
            keys += domain.hasPrefix("[") ? [String(domain)] : parents(domain)
        }
        keys.append(String(a[...at]))
        return unique(keys)
    }

    /// check_helo_access (and the name part of check_client_access): the name, then each parent
    /// domain. A name that is an IP address, bare or as a domain literal ("[192.0.2.1]"), is its own
    /// only key, as Postfix applies no subdomain search to numerical names. A trailing dot stays, as
    /// in Postfix ("mail.example.com." then "example.com." then "com.").
    public static func hostname(_ name: String) -> [String] {
        guard !name.isEmpty else { return [] }
        if name.hasPrefix("[") || AddressBytes.parse(name) != nil { return [name] }
        return parents(Substring(name))
    }

    /// check_client_access on texthash: the client name and its parents (`hostname`; nil when the
    /// name is not known, while the name "unknown" is looked up as the key "unknown", as Postfix does,
    /// so an access map may list it), then the address and its shorter prefixes. The address is
    /// written as Postfix writes a client address (IPv4-mapped IPv6 as IPv4, IPv6 in compressed lower
    /// case form, brackets removed), then cut at its last "." or ":" again and again, as access(5)
    /// says: "1.2.3.4", "1.2.3", "1.2", "1"; "2001:db8::1", "2001:db8:", "2001:db8", "2001";
    /// "1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7", ..., "1". So an IPv6 network key must be written as a
    /// prefix of the compressed form ("2001:db8" matches 2001:db8::1, "2001:db8:0" never does). Use
    /// cidr: for real network/prefix patterns. Text that is no IP address is its own only key.
    public static func client(name: String?, address: String) -> [String] {
        var keys = name.map(hostname) ?? []
        guard let canonical = canonicalAddress(address) else { return unique(address.isEmpty ? keys : keys + [address]) }
        var a = Substring(canonical)
        let delimiter: Character = a.contains(":") ? ":" : "."
        while !a.isEmpty {
            keys.append(String(a))
            guard let cut = a.lastIndex(of: delimiter) else { break }
            a = a[..<cut]
        }
        return unique(keys)
    }

    /// An address as Postfix shows a client's; nil for text that is no IP address.
    static func canonicalAddress(_ address: String) -> String? {
        var a = Substring(address)
        if a.hasPrefix("["), a.hasSuffix("]"), a.utf8.count >= 2 { a = a.dropFirst().dropLast() }
        guard let bytes = AddressBytes.parse(String(a)) else { return nil }
        return AddressBytes.format(AddressBytes.unmapped(bytes))
    }

    /// The name, then what follows each dot after its first character; none past a too-long name.
    static func parents(_ name: Substring) -> [String] {
        var keys = [String(name)]
        guard name.utf8.count <= maxParentSearchBytes else { return keys }
        var rest = name
        while let dot = rest.dropFirst().firstIndex(of: ".") {
            rest = rest[rest.index(after: dot)...]
            guard !rest.isEmpty else { break }
            keys.append(String(rest))
        }
        return keys
    }

    /// Keys in order, each once (a list is at most a few dozen keys, so a linear search beats hashing).
    private static func unique(_ keys: [String]) -> [String] {
        var out = [String]()
        out.reserveCapacity(keys.count)
        for key in keys where !out.contains(key) { out.append(key) }
        return out
    }
}
