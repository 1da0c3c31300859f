import Testing
@testable import SMTPGateCore

/// regexp: and pcre: tables: delimiters, flags, negation, if/endif, $n substitution, hostile input.
@Suite("access map regexp and pcre")
struct AccessMapPatternTests {
    func load(_ text: String, _ type: String = "regexp") throws(AccessMapError) -> any AccessTable {
        try AccessMaps.load("\(type):/etc/t") { _ in Array(text.utf8) }
    }

    func error(_ text: String, _ type: String = "regexp") -> AccessMapError? {
        do {
            _ = try load(text, type)
            return nil
        } catch {
            return error
        }
    }

    func reject(_ code: Int = 554, _ text: String? = nil) -> AccessTableResult {
        .found(.reject(AccessReply(code: code, enhanced: "\(code / 100).7.1", text: text)))
    }

    @Test func theRegexpManPageExample() throws {
        for type in ["regexp", "pcre"] {
            let t = try load(#"""
                # Disallow sender-specified routing. This is a must if you relay mail
                # for other domains.
                /[%!@].*[%!@]/       550 Sender-specified routing rejected

                # Postmaster is OK, that way they can talk to us about how to fix
                # their problem.
                /^postmaster@/       OK

                # Protect your outgoing majordomo exploders
                if !/^owner-/
                /^(.*)-outgoing@(.*)$/   550 Use ${1}@${2} instead
                endif
                """#, type)
            #expect(t.kind.rawValue == type)
            #expect(t.find("a%b@example.com") == reject(550, "Sender-specified routing rejected"))
            #expect(t.find("Postmaster@example.com") == .found(.ok), "caseless by default")
            #expect(t.find("list-outgoing@example.com") == reject(550, "Use list@example.com instead"))
            #expect(t.find("owner-list-outgoing@example.com") == .notFound)
            #expect(t.find("user@example.com") == .notFound)
        }
    }

    @Test func delimitersAndEscapes() throws {
        let t = try load("~^a/b$~ OK\n/^c\\/d$/ REJECT\n|^e f$| DUNNO\n")
        #expect(t.find("a/b") == .found(.ok))
        #expect(t.find("c/d") == reject())
        #expect(t.find("e f") == .found(.dunno), "a pattern may contain whitespace")
    }

    @Test func flagsToggle() throws {
        let t = try load("/^ABC$/i OK\n/^x.y$/ REJECT\n", "pcre")
        #expect(t.find("ABC") == .found(.ok))
        #expect(t.find("abc") == .notFound, "i toggles caseless off; keys are not folded")
        #expect(t.find("x\ny") == reject(), "pcre: s (dot matches newline) is on by default")
        let x = try load("/^ a b c $/x OK\n/b/A REJECT\n/^(a+?)(a*)$/U WARN $1|$2\n", "pcre")
        #expect(x.find("abc") == .found(.ok))
        #expect(x.find("xb") == .notFound, "A anchors")
        #expect(x.find("aaa") == .found(.warn("aaa|")), "U inverts greediness")
        let m = try load("/^b$/m OK\n", "pcre")
        #expect(m.find("a\nb\nc") == .found(.ok))
    }

    @Test func regexpDollarAndDotAreThoseOfPOSIX() throws {
        let r = try load("/^a$/ OK\n/^x.y$/ REJECT\n/^m$/m WARN m\n")
        #expect(r.find("a\n") == .notFound, "POSIX $ is the very end")
        #expect(r.find("x\ny") == reject())
        #expect(r.find("l\nm\nn") == .found(.warn("m")))
        let p = try load("/^a$/ OK\n/^a$/E REJECT\n", "pcre")
        #expect(p.find("a\n") == .found(.ok), "PCRE's $ also before a final newline, unless E")
    }

    @Test func negationAndBlocks() throws {
        let t = try load("""
            !/^ok/ REJECT
            /^okay$/ OK
            """)
        #expect(t.find("bad") == reject())
        #expect(t.find("okay") == .found(.ok))
        #expect(t.find("ok?") == .notFound)
        let nested = try load("""
            if /example\\.com$/
            if !/^mail\\./
            /./ REJECT
            endif
            /./ OK
            endif
            /./ DUNNO
            """, "pcre")
        #expect(nested.find("x.example.com") == reject())
        #expect(nested.find("mail.example.com") == .found(.ok))
        #expect(nested.find("other.test") == .found(.dunno))
        #expect(try load("! ! /x/ OK\n").find("x") == .found(.ok), "two negations cancel")
    }

    @Test func substitution() throws {
        let t = try load(#"""
            /^([a-z]+)\.(\w+)@/ REJECT 5.7.9 $2 of $(1) costs $$5
            /^pre(fix)?-(.*)$/ PREPEND X-Seen: ${1}/$2
            /^odd(.*)$/ REJECT bad $1
            """#, "pcre")
        #expect(t.find("ann.lee@x") == .found(.reject(AccessReply(code: 554, enhanced: "5.7.9", text: "lee of ann costs $5"))))
        #expect(t.find("pre-z") == .found(.prepend("X-Seen: /z")), "a group that took no part is empty")
        #expect(t.find("odd\u{1}\u{7f}\u{e9}x") == reject(554, "bad ????x"), "client bytes that are not printable ASCII become ?")
        #expect(try load("/^$/ REJECT cost $$1\n").find("") == reject(554, "cost $1"), "$$ alone needs no group")
    }

    @Test func substitutionThatBreaksTheActionFailsTheLookup() throws {
        let t = try load("/^(.*)$/ PREPEND X-Client-$1: yes\n", "pcre")
        #expect(t.find("abc") == .found(.prepend("X-Client-abc: yes")))
        guard case .failed(let why) = t.find("a b") else {
            Issue.record("expected a failure")
            return
        }
        #expect(why.hasPrefix("pcre:/etc/t line 1: the result with $n substituted:"), "\(why)")
        let long = try load("/^(.*)$/ REJECT $1$1$1$1$1$1$1$1$1$1\n", "pcre")
        guard case .failed(let tooLong) = long.find(repeated("x", 1_000)) else {
            Issue.record("expected a failure")
            return
        }
        #expect(tooLong.contains("bytes"), "\(tooLong)")
        let reply = try load("/^(.*)$/ 550 $1\n", "pcre")
        #expect(reply.find("5.7.1 sneaky") == reject(550, "sneaky"), "as Postfix: substituted, then parsed")
        guard case .failed = reply.find("4.7.1 class") else {
            Issue.record("a substituted enhanced code of the wrong class is a failure")
            return
        }
    }

    @Test func badSubstitutionsAreLoadErrors() {
        #expect(error("/^(a)(b)$/ REJECT $3\n")?.message == "$3 in the result, but the pattern has 2 group(s)")
        #expect(error("!/^(a)$/ REJECT $1\n")?.message.contains("negated") == true)
        #expect(error("/^(a)$/ REJECT $x\n")?.message.contains("bad $") == true)
        #expect(error("/^(a)$/ REJECT $1x\n")?.message.contains("bad $") == true)
        #expect(error("/^(a)$/ REJECT ${1\n")?.message.contains("bad $") == true)
        #expect(error("/^(a)$/ REJECT $\n")?.message.contains("bad $") == true)
        #expect(error("/^(a)$/ REJECT $0\n")?.message.contains("bad $") == true)
        #expect(error("/^(a)$/ REJECT ${name}\n")?.message.contains("bad $") == true)
        #expect(error("/^(a)$/ $1\n")?.message.contains("unknown action") == true, "the action word cannot come from the client")
        #expect(error("/^(a)$/ 55$1 x\n")?.message.contains("unknown action") == true)
        #expect(error("/^(a)$/ REJECT 4.7.1 $1\n")?.message.contains("class must be 5") == true)
    }

    @Test func syntaxErrorsNameTheLine() {
        #expect(error("/a/ OK\n/(/ OK\n")?.description.hasPrefix("/etc/t:2: bad regular expression: ") == true)
        #expect(error("/abc OK\n")?.message.contains("no closing delimiter") == true)
        #expect(error("/a/ OK\n/b/\n")?.description == "/etc/t:2: expected format: /pattern/ whitespace result; there is no result")
        #expect(error("/a/!/b/ OK\n")?.message.contains("if !/pattern2/") == true)
        #expect(error("aa OK\n")?.message.contains("delimiter") == true)
        #expect(error("\\a\\ OK\n")?.message.contains("delimiter") == true)
        #expect(error("/a/q OK\n")?.message.contains("unknown flag \"q\"") == true)
        #expect(error("/a/x OK\n")?.message.contains("basic regular expressions") == true)
        #expect(error("/a/X OK\n", "pcre")?.message.contains("PCRE2") == true)
        #expect(error("/a/s OK\n")?.message.contains("unknown flag") == true, "s is pcre's")
        #expect(error("endif\n")?.message == "endif without if")
        #expect(error("if /a/\n/b/ OK\n")?.description == "/etc/t:1: if without endif")
        #expect(error("if /a/ OK\nendif\n")?.message.contains("after the if pattern") == true)
        #expect(error("if /a/\nendif x\n")?.line == 2)
        #expect(error("!\n")?.message == "no pattern")
        #expect(error("/a/ OK\n/b/ permit\n")?.line == 2)
        #expect(error(repeated("if /a/\n", 33) + repeated("endif\n", 33))?.line == 33)
        #expect(error(repeated("if /a/\n", 32) + "/a/ OK\n" + repeated("endif\n", 32)) == nil)
    }

    @Test func ifAndEndifAreWholeWords() throws {
        #expect(error("ifx OK\n")?.message.contains("delimiter") == true, "not a keyword, and not a pattern")
        #expect(error("if /a/\nendifx\n")?.line == 2)
        let t = try load("IF/a/\n/./ OK\nEndIf\n")
        #expect(t.find("a") == .found(.ok))
        #expect(t.find("b") == .notFound)
    }

    @Test func aPatternThatBacktracksFailsTheLookupInsteadOfStalling() throws {
        let t = try load("/^x/ OK\n/^(a+)+$/ REJECT\n", "pcre")
        let hostile = repeated("a", 5_000) + "!"
        guard case .failed(let why) = t.find(hostile) else {
            Issue.record("expected a limit")
            return
        }
        #expect(why.hasPrefix("pcre:/etc/t line 2: "), "\(why)")
        #expect(why.contains("limit"), "\(why)")
        let block = try load("if /^(a+)+$/\n/./ OK\nendif\n", "pcre")
        guard case .failed = block.find(hostile) else {
            Issue.record("an if pattern's limit fails the lookup too")
            return
        }
    }

    @Test func patternCountIsBoundedBeforeAnythingCompiles() {
        let e = error(repeated("not compiled\n", AccessMaps.maxPatternRules + 1), "pcre")
        #expect(e?.line == AccessMaps.maxPatternRules + 1)
        #expect(e?.message.contains("more than 100000 patterns") == true)
    }

    @Test func hostileKeysAndFiles() throws {
        let t = try load("/^a\\x00b$/ OK\n/./ REJECT\n", "pcre")
        #expect(t.find("a\u{0}b") == .found(.ok), "keys are matched as bytes")
        #expect(t.find(repeated("\u{e9}", 3_000)) == reject())
        #expect(error("/a/ OK\n/" + repeated("a", 5_000) + "/ OK\n")?.line == 2)
        #expect(error("/a/ OK\n/\u{0}/ OK\n")?.message == "NUL byte in the line")
        #expect(error("/a/ OK \u{1b}[31m\n")?.description.contains("\u{1b}") == false)
    }
}
