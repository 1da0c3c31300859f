import Testing
@testable import SMTPGateCore

/// cidr: tables (cidr_table(5)): file order, negation, if/endif, and bad patterns.
@Suite("access map cidr")
struct AccessMapCIDRTests {
    func load(_ text: String) throws(AccessMapError) -> any AccessTable {
        try AccessMaps.load("cidr:/etc/t.cidr") { _ in Array(text.utf8) }
    }

    func error(_ text: String) -> AccessMapError? {
        do {
            _ = try load(text)
            return nil
        } catch {
            return error
        }
    }

    let reject = AccessTableResult.found(.reject(AccessReply(code: 554, enhanced: "5.7.1")))

    @Test func theManPageExampleInFileOrder() throws {
        let t = try load("""
            # Rule order matters. Put more specific allowlist entries
            # before more general denylist entries.
            192.168.1.1             OK
            192.168.0.0/16          REJECT
            2001:db8::1             OK
            2001:db8::/32           REJECT
            """)
        #expect(t.kind == .cidr)
        #expect(t.find("192.168.1.1") == .found(.ok))
        #expect(t.find("192.168.1.2") == reject)
        #expect(t.find("192.169.0.1") == .notFound)
        #expect(t.find("2001:db8::1") == .found(.ok))
        #expect(t.find("2001:DB8:0:0::1") == .found(.ok), "compared as bytes")
        #expect(t.find("2001:db8:ffff::1") == reject)
        #expect(t.find("[2001:db8::2]") == reject)
        #expect(t.find("[192.168.3.3]") == reject)
        #expect(t.find("::ffff:192.168.1.1") == .found(.ok), "IPv4-mapped clients are IPv4")
        #expect(t.find("mail.example.com") == .notFound)
        #expect(t.find("") == .notFound)
        #expect(t.find("192.168.1.1\u{0}") == .notFound)
    }

    @Test func everythingPrefixesAndBrackets() throws {
        let t = try load("[10.0.0.0]/8 DUNNO\n[2001:db8::]/32 OK\n0.0.0.0/0 REJECT\n::/0 DEFER\n")
        #expect(t.find("10.1.2.3") == .found(.dunno))
        #expect(t.find("2001:db8::5") == .found(.ok))
        #expect(t.find("203.0.113.1") == reject)
        #expect(t.find("fe80::1") == .found(.deferred(AccessReply(code: 450, enhanced: "4.7.1"))))
    }

    @Test func negationAppliesOnlyWithinTheFamily() throws {
        let t = try load("!192.168.0.0/16 REJECT\n")
        #expect(t.find("10.0.0.1") == reject)
        #expect(t.find("192.168.0.1") == .notFound)
        #expect(t.find("2001:db8::1") == .notFound, "an IPv4 pattern says nothing about IPv6")
    }

    @Test func ifBlocksNest() throws {
        let t = try load("""
            if 10.0.0.0/8
            if !10.1.0.0/16
            10.2.0.0/16 REJECT
            endif
            10.1.2.0/24 OK
            10.0.0.0/8 DUNNO
            endif
            IF 2001:db8::/32
            2001:db8::/48 OK
            ENDIF
            0.0.0.0/0 WARN rest
            """)
        #expect(t.find("10.2.3.4") == reject)
        #expect(t.find("10.1.2.3") == .found(.ok))
        #expect(t.find("10.1.3.3") == .found(.dunno))
        #expect(t.find("10.3.3.3") == .found(.dunno))
        #expect(t.find("11.0.0.1") == .found(.warn("rest")))
        #expect(t.find("2001:db8::1") == .found(.ok))
        #expect(t.find("2001:db8:1::1") == .notFound)
    }

    @Test func nestingIsBounded() throws {
        let deep = { (n: Int) in repeated("if 10.0.0.0/8\n", n) + "10.0.0.1 OK\n" + repeated("endif\n", n) }
        let t = try load(deep(AccessMaps.maxNesting))
        #expect(t.find("10.0.0.1") == .found(.ok))
        let e = error(deep(AccessMaps.maxNesting + 1))
        #expect(e?.line == AccessMaps.maxNesting + 1)
        #expect(e?.message.contains("nested more than 32") == true)
    }

    @Test func blockErrors() {
        #expect(error("10.0.0.0/8 OK\nendif\n")?.description == "/etc/t.cidr:2: endif without if")
        #expect(error("if 10.0.0.0/8\n10.0.0.1 OK\n")?.description == "/etc/t.cidr:1: if without endif")
        #expect(error("if 10.0.0.0/8 OK\nendif\n")?.line == 1)
        #expect(error("if\nendif\n")?.line == 1)
        #expect(error("if 10.0.0.0/8\nendif junk\n")?.line == 2)
    }

    @Test func badPatternsAreErrorsWithTheirLine() {
        #expect(error("10.0.0.0/8 OK\n10.0.0.1/8 REJECT\n")?.description
                == "/etc/t.cidr:2: \"10.0.0.1/8\" has bits set after the prefix length (did you mean the network address?)")
        for bad in ["10.0.0.0/33", "10.0.0", "300.1.1.1", "fe80::/129", "010.0.0.1", "10.0.0.0/", "10.0.0.0/8/8",
                    "2001:db8::/-1", "!", "!!10.0.0.0/8", "example.com", "[10.0.0.1"] {
            let e = error("192.0.2.0/24 OK\n\(bad) REJECT\n")
            #expect(e?.line == 2, "\(bad)")
        }
        #expect(error("10.0.0.0/8\n")?.message.contains("has no action") == true)
        #expect(error("10.0.0.0/8 FILTER x:y\n")?.message.contains("does not queue") == true)
    }

    @Test func hostileFiles() {
        #expect(error("10.0.0.0/8 OK\n\u{0}\n")?.line == 2)
        #expect(error("10.0.0.0/8 REJECT " + repeated("x", 5_000) + "\n")?.line == 1)
        #expect(error(repeated("10.0.0.0/8 OK\n", 3) + "  continued text\n") == nil, "a continuation joins the entry before")
        let hostile = repeated("\u{1b}[2J", 20) + " OK\n"
        let shown = error(hostile)?.description ?? ""
        #expect(!shown.contains("\u{1b}"), "\(shown)")
    }
}
