import Testing
@testable import SMTPGateCore

@Suite("state_store postgresql://")
struct PostgresURLTests {
    @Test func tcpAndSocketFormsParse() throws {
        let tcp = try PostgresURL.parse("postgresql://gate:s%40cret@db.example:5433/smtpgate")
        #expect(tcp.user == "gate" && tcp.password == "s@cret" && tcp.host == "db.example" && tcp.port == 5433 && tcp.database == "smtpgate")
        #expect(tcp.description == "postgresql://gate:***@db.example:5433/smtpgate")
        let v6 = try PostgresURL.parse("postgresql://gate@[2001:db8::1]/smtpgate")
        #expect(v6.host == "2001:db8::1" && v6.port == 5432 && v6.password == nil)
        let sock = try PostgresURL.parse("postgresql:///smtpgate?host=/run/postgresql&user=gate")
        #expect(sock.socketPath == "/run/postgresql/.s.PGSQL.5432" && sock.host == nil)
        #expect(try PostgresURL.parse(sock.description) == sock)
    }

    @Test(arguments: ["postgresql://db/smtpgate", "postgresql://u@db", "postgresql://u@db:0/x", "postgresql://u@/x",
                      "postgresql:///x?host=relative&user=u", "postgresql://u@db/x?sslmode=require", "postgresql://u@db/x y",
                      "postgresql://u@db/%zz"])
    func badURLsAreRefused(_ text: String) {
        #expect(throws: PostgresURL.ParseError.self) { _ = try PostgresURL.parse(text) }
    }

    @Test func theOptionTakesItAndCheckConfigHidesThePassword() throws {
        let c = try ConfigParser.parse("mode fixed\nfixed_server 192.0.2.25\nstate_store postgresql://gate:sekrit@127.0.0.1/smtpgate\n", file: "t.conf")
        #expect(c.stateStorePostgres?.password == "sekrit" && c.stateStorePath == nil && c.abuseControl)
        let shown = ConfigParser.render(c)
        #expect(shown.contains("\nstate_store postgresql://gate:***@127.0.0.1/smtpgate\n") && !shown.contains("sekrit"))
    }
}
