import Testing
@testable import SMTPGateCore

struct ConfigErrorsTests {
    @Test func everyBadLineIsReportedInOrderWithItsLine() {
        let text = """
        mode fixed
        fixed_server 127.0.0.1
        timout_idle 10
        port seventy
        max_per_hots 3
        bind_address 127.0.0.1
        """
        let errors = ConfigParser.errors(text, file: "t.conf")
        #expect(errors.map(\.line) == [3, 4, 5])
        #expect(errors[0].description == "t.conf:3: unknown option 'timout_idle' (did you mean 'timeout_idle'?)")
        #expect(errors[2].message.contains("did you mean 'max_per_host'?"))
    }

    @Test func aGoodFileHasNoErrorsAndALinelessErrorEndsTheList() {
        #expect(ConfigParser.errors("mode fixed\nfixed_server 127.0.0.1\n", file: "t").isEmpty)
        let errors = ConfigParser.errors("bind_address 127.0.0.1\n", file: "t")
        #expect(errors.count == 1)
    }

    @Test func crlfLinesAreLinesToo() {
        let errors = ConfigParser.errors("mode fixed\r\nfixed_server 127.0.0.1\r\nbogus_a 1\r\nbogus_b 2\r\n", file: "t")
        #expect(errors.map(\.line) == [3, 4])
    }

    @Test func anErrorOnASectionHeaderEndsTheList() {
        let text = "mode fixed\nfixed_server 127.0.0.1\n[listener a]\nport 25\n[forward a]\nport 26\nbogus 1\n"
        let errors = ConfigParser.errors(text, file: "t")
        #expect(errors.map(\.line) == [5], "not the options that would fall into [listener a] without it")
    }

    @Test func theListIsBounded() {
        let text = (0..<500).map { "junk_option_\($0) 1" }.joined(separator: "\n")
        #expect(ConfigParser.errors(text, file: "t", limit: 50).count == 50)
    }

    @Test func suggestionsAreNearAndNeverForFarOrHostileNames() {
        let names = Option.byName.keys
        #expect(OptionSuggestion.nearest("ratelimit_conections", among: names) == "ratelimit_connections")
        #expect(OptionSuggestion.nearest("TIMEOUT_IDEL", among: names) == "timeout_idle", "case and a transposition")
        #expect(OptionSuggestion.nearest("xyzzy", among: names) == nil)
        #expect(OptionSuggestion.nearest("", among: names) == nil)
        #expect(OptionSuggestion.nearest(String(repeating: "a", count: 100_000), among: names) == nil)
        #expect(OptionSuggestion.nearest("Port", among: names) == "port", "option names are lower case")
    }
}
