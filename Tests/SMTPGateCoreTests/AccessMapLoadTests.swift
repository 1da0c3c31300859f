import Testing
@testable import SMTPGateCore

/// `AccessMaps.load`: table specs, the types SMTPGate refuses, and read failures.
@Suite("access map load")
struct AccessMapLoadTests {
    struct Unreadable: Error, CustomStringConvertible {
        var description: String { "No such file or directory" }
    }

    func error(_ spec: String) -> AccessMapError? {
        do {
            _ = try AccessMaps.load(spec) { _ in Array("a OK\n".utf8) }
            return nil
        } catch {
            return error
        }
    }

    @Test func supportedTypes() throws {
        for (spec, kind) in [("texthash:/t", AccessTableKind.texthash), ("hash:/t", .texthash), ("cidr:/t", .cidr),
                             ("regexp:/t", .regexp), ("pcre:/t", .pcre)] {
            let text = kind == .cidr ? "10.0.0.0/8 OK\n" : kind == .texthash ? "a OK\n" : "/a/ OK\n"
            let t = try AccessMaps.load(spec) { _ in Array(text.utf8) }
            #expect(t.kind == kind)
            #expect(t.source == spec)
        }
    }

    @Test func otherTypesSayWhatToUse() {
        #expect(error("btree:/etc/postfix/access")?.message.contains("texthash:/path/to/source") == true)
        #expect(error("lmdb:/etc/postfix/access")?.message.contains("indexed file") == true)
        #expect(error("ldap:/etc/postfix/ldap.cf")?.message.contains("ldap: tables are not supported") == true)
        #expect(error("mysql:/etc/postfix/m.cf")?.message.contains("texthash:") == true)
        #expect(error("proxy:hash:/etc/postfix/access")?.message.contains("as hash:/path") == true)
        #expect(error("nosuch:/x")?.message.contains("unknown table type \"nosuch\"") == true)
        #expect(error("/etc/postfix/access")?.message.contains("expected TYPE:/path") == true)
        #expect(error("hash:")?.message == "no file after hash:")
        #expect(error("cidr:{ 10.0.0.0/8 OK }")?.message.contains("inline tables") == true)
        #expect(error("hash:$config_directory/helo_access")?.message.contains("$name expansion") == true)
        #expect(error("bad\u{1b}type:/x")?.message.contains("\u{1b}") == false, "escaped")
    }

    @Test func readFailuresNameTheFile() {
        do {
            _ = try AccessMaps.load("hash:/etc/postfix/gone") { _ in throw Unreadable() }
            Issue.record("expected an error")
        } catch {
            #expect(error.description == "/etc/postfix/gone: cannot read it: No such file or directory")
        }
    }

    @Test func errorDescriptions() {
        #expect(AccessMapError(file: "/f", line: 3, message: "m").description == "/f:3: m")
        #expect(AccessMapError(file: "/f", line: nil, message: "m").description == "/f: m")
    }
}
