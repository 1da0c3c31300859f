import Testing
@testable import SMTPGateCore

/// Seed 001 (a Postfix inbound instance): its helo_access, sender_access and recipient_access files,
/// copied byte for byte (tabs, trailing spaces, the literal MY-PUBLIC-IP), answer as Postfix would.
/// The postmap and postmulti command lines printed under each excerpt are shell commands, not part
/// of the files.
@Suite("access map seed 001")
struct AccessMapSeedTests {
    static let heloAccess =
        "MY-PUBLIC-IP\t\t\tREJECT Forged Source. If I needed a mirror I'd visit the bathroom\n"
        + "example.com\t\t\t\tREJECT Forged Source. If I needed a mirror I'd visit the bathroom\n"
        + "example.org \t\t\tREJECT Forged Source. If I needed a mirror I'd visit the bathroom \n"
        + "subdomain.example.org  \tREJECT Forged Source. If I needed a mirror I'd visit the bathroom \n"

    static let senderAccess =
        "example.com\t\t\t\tREJECT forged account \n"
        + "example.org\t\t\t\tREJECT forged account\n"
        + "subdomain.example.com\tREJECT forged account\n"

    static let recipientAccess =
        "10.20.30.40\t\t\t\tREJECT forged account \n"
        + "127.0.0.1\t\t\t\tREJECT forged account\n"
        + "10.11.32.55\t\t\t\tOK\n"

    static let mirror = AccessTableResult.found(.reject(AccessReply(
        code: 554, enhanced: "5.7.1", text: "Forged Source. If I needed a mirror I'd visit the bathroom")))
    static let forged = AccessTableResult.found(.reject(AccessReply(code: 554, enhanced: "5.7.1", text: "forged account")))

    func load(_ path: String, _ text: String) throws -> any AccessTable {
        try AccessMaps.load("hash:" + path) { p in
            #expect(p == path)
            return Array(text.utf8)
        }
    }

    @Test func heloAccess() throws {
        let t = try load("/etc/postfix-inbound/helo_access", Self.heloAccess)
        #expect(t.warnings.isEmpty)
        #expect(AccessMaps.lookup(t, keys: AccessKeys.hostname("subdomain.example.org")) == Self.mirror)
        #expect(AccessMaps.lookup(t, keys: AccessKeys.hostname("mail.example.com")) == Self.mirror, "via the parent example.com")
        #expect(AccessMaps.lookup(t, keys: AccessKeys.hostname("EXAMPLE.ORG")) == Self.mirror)
        #expect(AccessMaps.lookup(t, keys: AccessKeys.hostname("my-public-ip")) == Self.mirror, "the placeholder is an ordinary key")
        #expect(AccessMaps.lookup(t, keys: AccessKeys.hostname("mail.example.net")) == .notFound)
        #expect(AccessMaps.lookup(t, keys: AccessKeys.hostname("example.com.evil.test")) == .notFound)
    }

    @Test func senderAccess() throws {
        let t = try load("/etc/postfix-inbound/sender_access", Self.senderAccess)
        #expect(AccessMaps.lookup(t, keys: AccessKeys.address("user@sub.example.org")) == Self.forged)
        #expect(AccessMaps.lookup(t, keys: AccessKeys.address("<Someone@Example.COM>")) == Self.forged)
        #expect(AccessMaps.lookup(t, keys: AccessKeys.address("user@subdomain.example.com")) == Self.forged)
        #expect(AccessMaps.lookup(t, keys: AccessKeys.address("user@example.net")) == .notFound)
        #expect(AccessMaps.lookup(t, keys: AccessKeys.address("<>")) == .notFound)
    }

    @Test func recipientAccess() throws {
        let t = try load("/etc/postfix-inbound/recipient_access", Self.recipientAccess)
        #expect(t.find("10.11.32.55") == .found(.ok))
        #expect(t.find("127.0.0.1") == Self.forged)
        #expect(t.find("10.20.30.40") == Self.forged)
        #expect(AccessMaps.lookup(t, keys: AccessKeys.client(name: nil, address: "10.11.32.55")) == .found(.ok))
        #expect(AccessMaps.lookup(t, keys: AccessKeys.address("user@example.com")) == .notFound)
    }
}
