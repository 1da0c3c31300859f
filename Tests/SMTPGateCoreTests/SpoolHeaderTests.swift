import Testing
@testable import SMTPGateCore

@Suite("spool_header")
struct SpoolHeaderTests {
    @Test func offByDefaultAndReadBack() throws {
        let base = "mode fixed\nfixed_server 192.0.2.25\n"
        #expect(try ConfigParser.parse(base, file: "t.conf").spoolHeader == nil)
        let on = try ConfigParser.parse(base + "spool_header X-Proxy-Spool-Info\n", file: "t.conf")
        #expect(on.spoolHeader == "X-Proxy-Spool-Info")
        #expect(ConfigParser.render(on).contains("\nspool_header X-Proxy-Spool-Info\n"))
        #expect(try ConfigParser.parse(base + "spool_header none\n", file: "t.conf").spoolHeader == nil)
        #expect { _ = try ConfigParser.parse(base + "spool_header X-Bad:Name\n", file: "t.conf") }
            throws: { e in (e as? ConfigError)?.line == 3 }
    }

    @Test func oneLineOfPrintableTextWhateverTheClientSent() {
        var c = SessionContext(id: "s7", listener: "main", client: "10.77.1.2:4000", local: "-", destination: "10.77.2.25:25")
        c.ident = "bob\r\nX-Evil: 1\u{e9}"
        let h = String(decoding: SpoolHeader.make(name: "X-Proxy-Spool-Info", c, proxyName: "gw"), as: UTF8.self)
        #expect(h == "X-Proxy-Spool-Info: session=s7 listener=main client=10.77.1.2:4000 dest=10.77.2.25:25 ident=bob??X-Evil: 1?? by gw\r\n")
    }
}
