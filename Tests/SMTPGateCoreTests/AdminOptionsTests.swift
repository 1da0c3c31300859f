import Testing
@testable import SMTPGateCore

struct AdminOptionsTests {
    let head = "mode fixed\nfixed_server 127.0.0.1\n"

    @Test func offByDefaultWithLoopbackAllowed() throws {
        let c = try ConfigParser.parse(head, file: "t")
        #expect(c.adminListen == nil)
        #expect(c.adminAllow.map(\.description) == ["127.0.0.0/8", "::1/128"])
    }

    @Test func anAddressAndAnAllowListAreTakenAndRenderedBack() throws {
        let text = head + "admin_listen [::1]:9125\nadmin_allow 127.0.0.1,10.77.9.0/24\n"
        let file = try ConfigParser.parseFile(text, file: "t")
        #expect(file.global.adminListen?.description == "[::1]:9125")
        #expect(file.global.adminAllow.map(\.description) == ["127.0.0.1/32", "10.77.9.0/24"])
        let rendered = ConfigParser.render(file)
        #expect(rendered.contains("admin_listen [::1]:9125\n") && rendered.contains("admin_allow 127.0.0.1/32,10.77.9.0/24\n"))
        #expect(try ConfigParser.parseFile(rendered, file: "r").global.adminListen == file.global.adminListen)
    }

    @Test(arguments: [
        ("admin_listen localhost:9125", "expected ADDRESS:PORT with a literal address"),
        ("admin_listen 127.0.0.1", "expected ADDRESS:PORT"),
        ("admin_listen 127.0.0.1:9125\\x00", "expected ADDRESS:PORT"),
        ("admin_allow 10.0.0.1/8", "bits set after the prefix length"),
        ("admin_allow everyone", "not an IPv4 or IPv6 address"),
    ])
    func badValuesSayWhatIsExpected(_ line: String, _ message: String) {
        #expect(throws: ConfigError.self) { try ConfigParser.parse(head + line + "\n", file: "t") }
        do {
            _ = try ConfigParser.parse(head + line + "\n", file: "t")
        } catch {
            #expect(error.line == 3 && error.message.contains(message), "\(error)")
        }
    }

    @Test func theyAreTheDaemonsNotAListeners() {
        do {
            _ = try ConfigParser.parseFile(head + "[listener a]\nport 2525\nadmin_listen 127.0.0.1:9125\n", file: "t")
            Issue.record("accepted in a section")
        } catch {
            #expect(error.line == 5 && error.message.contains("is the daemon's"), "\(error)")
        }
        #expect(OptionScope.reload("admin_listen") == .restart)
        #expect(OptionScope.reload("admin_allow") == .applies)
    }
}
