import Testing
@testable import SMTPGateCore

/// texthash: (and hash:, read the same way): postmap's source format, and hostile files.
@Suite("access map texthash")
struct AccessMapTextHashTests {
    func load(_ text: String, spec: String = "texthash:/etc/t") throws(AccessMapError) -> any AccessTable {
        try AccessMaps.load(spec) { _ in Array(text.utf8) }
    }

    func load(bytes: [UInt8]) throws(AccessMapError) -> any AccessTable {
        try AccessMaps.load("texthash:/etc/t") { _ in bytes }
    }

    func error(_ text: String) -> AccessMapError? {
        error(bytes: Array(text.utf8))
    }

    func error(bytes: [UInt8]) -> AccessMapError? {
        do {
            _ = try load(bytes: bytes)
            return nil
        } catch {
            return error
        }
    }

    let reject = AccessTableResult.found(.reject(AccessReply(code: 554, enhanced: "5.7.1", text: nil)))

    @Test func keysAreFoldedAndCommentsAndBlankLinesIgnored() throws {
        let t = try load("""
            # a comment
            Example.COM\tREJECT

               # an indented comment
            \t
            user@example.org  OK
            """)
        #expect(t.kind == .texthash)
        #expect(t.source == "texthash:/etc/t")
        #expect(t.find("example.com") == reject)
        #expect(t.find("EXAMPLE.com") == reject)
        #expect(t.find("USER@Example.ORG") == .found(.ok))
        #expect(t.find("example.org") == .notFound)
        #expect(t.find("") == .notFound)
        #expect(t.warnings.isEmpty)
    }

    @Test func continuationLinesJoinAsRead() throws {
        let t = try load("a.example REJECT first\n  and more\n# comment between\n\tand last\nb.example OK\n")
        #expect(t.find("a.example") == .found(.reject(AccessReply(code: 554, enhanced: "5.7.1", text: "first  and more\tand last"))))
        #expect(t.find("b.example") == .found(.ok))
    }

    @Test func crlfFilesLoad() throws {
        let t = try load("a.example REJECT no\r\nb.example OK\r\n\r\n")
        #expect(t.find("a.example") == .found(.reject(AccessReply(code: 554, enhanced: "5.7.1", text: "no"))))
        #expect(t.find("b.example") == .found(.ok))
    }

    @Test func duplicateKeysKeepTheFirstAndWarn() throws {
        let t = try load("a.example OK\nb.example OK\nA.Example REJECT\n")
        #expect(t.find("a.example") == .found(.ok))
        #expect(t.warnings == [#"/etc/t:3: duplicate entry "A.Example" (first at line 1): the first is used"#])
    }

    @Test func warningsAreBounded() throws {
        let text = (0..<500).map { _ in "dup OK\n" }.joined()
        let t = try load(text)
        #expect(t.warnings.count == TextHashTable.maxWarnings + 1)
        #expect(t.warnings.last == "/etc/t: 499 duplicate entries in all")
    }

    @Test func aliasLookingKeysWarn() throws {
        let t = try load("postmaster: OK\n")
        #expect(t.warnings.first?.contains("is this an alias file?") == true)
    }

    @Test func quotedKeysKeepTheirQuotedForm() throws {
        let t = try load(#""john doe"@example.com REJECT"# + "\n" + #"a\ b OK"# + "\n")
        #expect(t.find(#""John Doe"@example.com"#) == reject)
        #expect(t.find(#"a\ b"#) == .found(.ok))
    }

    @Test func malformedEntriesAreErrorsWithTheirLine() {
        #expect(error("a OK\nlonely\n")?.description == #"/etc/t:2: expected format: key whitespace value; "lonely" has no value"#)
        #expect(error("a OK\n\"open REJECT\n")?.line == 2)
        #expect(error("  starts indented OK\n")?.description == "/etc/t:1: a line starting with whitespace continues an entry, but no entry precedes it")
        #expect(error("a OK\nb REDIRECT x@y\n")?.description.hasPrefix("/etc/t:2: REDIRECT is an action of check_destination_access maps only") == true)
        #expect(error("a OK\n\nc permit_mynetworks\n")?.line == 3)
    }

    @Test func longLinesAreErrors() throws {
        let key = repeated("k", AccessMaps.maxLineBytes - 3)
        _ = try load(key + " OK\n")
        let e = error("a OK\n" + key + "k OK\n")
        #expect(e?.line == 2)
        #expect(e?.message.contains("at most 4096") == true)
        let joined = error("a REJECT " + repeated("x", 3000) + "\n " + repeated("y", 1200) + "\n")
        #expect(joined?.line == 1)
        #expect(joined?.message.contains("continuation") == true)
    }

    @Test func nulBytesAndInvalidUTF8AreErrors() {
        #expect(error(bytes: b("a OK\nb\u{0} OK\n"))?.description == "/etc/t:2: NUL byte in the line")
        #expect(error(bytes: b("a OK\nb OK\n") + [0xff, 0xfe] + b(" OK\n"))?.description == "/etc/t:3: the line is not valid UTF-8")
        #expect(error(bytes: b("a REJECT ") + [0xc3] + b("\n"))?.line == 1, "a truncated sequence")
        #expect(error(bytes: b("# comment ") + [0xed, 0xa0, 0x80] + b("\n"))?.line == 1, "surrogates, even in a comment")
    }

    @Test func hugeFilesAreRefusedBeforeParsing() {
        let e = error(bytes: [UInt8](repeating: UInt8(ascii: "#"), count: AccessMaps.maxFileBytes + 1))
        #expect(e?.line == nil)
        #expect(e?.message.contains("at most \(AccessMaps.maxFileBytes)") == true)
    }

    @Test func tooManyEntriesIsAnError() throws {
        var bytes = [UInt8]()
        bytes.reserveCapacity((AccessMaps.maxEntries + 1) * 2)
        for _ in 0...AccessMaps.maxEntries { bytes += [UInt8(ascii: "x"), UInt8(ascii: "\n")] }
        do {
            _ = try MapSource.lines(bytes, file: "f")
            Issue.record("expected an error")
        } catch {
            #expect(error.line == AccessMaps.maxEntries + 1)
            #expect(error.message == "more than 2000000 entries")
        }
        bytes.removeLast(2)
        #expect(try MapSource.lines(bytes, file: "f").count == AccessMaps.maxEntries)
    }

    @Test func aHundredThousandEntriesLoadQuicklyAndLookUpRight() throws {
        var text = ""
        text.reserveCapacity(100_000 * 40)
        for i in 0..<100_000 { text += "host\(i).example.com\tREJECT blocked \(i)\n" }
        let clock = ContinuousClock()
        var table: (any AccessTable)?
        let took = try clock.measure { table = try load(text) }
        #expect(took < .seconds(30), "generous: a debug build on a slow machine; \(took)")
        let t = try #require(table)
        for i in stride(from: 0, to: 100_000, by: 997) {
            #expect(t.find("HOST\(i).example.com") == .found(.reject(AccessReply(code: 554, enhanced: "5.7.1", text: "blocked \(i)"))))
        }
        #expect(t.find("host100000.example.com") == .notFound)
    }

    @Test func hashIsReadAsTexthash() throws {
        let t = try load("a OK\n", spec: "hash:/etc/postfix/access")
        #expect(t.kind == .texthash)
        #expect(t.source == "hash:/etc/postfix/access")
        #expect(t.find("A") == .found(.ok))
    }
}
