import Testing
@testable import SMTPGateCore

/// `email_length`: addresses in log lines are cut, never inside an escape, and say so.
@Suite("email_length")
struct EmailLengthTests {
    func policy(_ n: Int) -> LogPolicy {
        var p = LogPolicy(helo: true, mailFrom: .all, rcptTo: .all)
        p.emailLength = n
        return p
    }

    @Test func theDefaultCutsNoAddressTheProxyRelays() throws {
        let c = try ConfigParser.parse("mode fixed\nfixed_server 192.0.2.25\n", file: "t.conf")
        #expect(c.emailLength == 256 && LogPolicy(config: c).emailLength == 256)
        let longest = "<" + String(repeating: "a", count: 254) + ">"
        #expect(LogPolicy(config: c).address(longest) == longest)
        // smtp-gated's value still loads; above 256 reads as 256, below 8 is refused.
        #expect(try ConfigParser.parse("mode fixed\nfixed_server 192.0.2.25\nemail_length 64\n", file: "t.conf").emailLength == 64)
        #expect(try ConfigParser.parse("mode fixed\nfixed_server 192.0.2.25\nemail_length 4096\n", file: "t.conf").emailLength == 256)
        #expect { _ = try ConfigParser.parse("mode fixed\nfixed_server 192.0.2.25\nemail_length 7\n", file: "t.conf") }
            throws: { e in (e as? ConfigError)?.line == 3 }
    }

    @Test func aCutAddressEndsInDotsAndKeepsEscapesWhole() {
        #expect(policy(10).address("<abcdefghijkl@x.test>") == "<abcdefghi...")
        // "\x0d" is four bytes: the cut goes before it rather than through it.
        #expect(policy(10).address("<abcdefg\\x0dhij>") == "<abcdefg...")
        #expect(policy(12).address("<abcdefg\\x0dhij>") == "<abcdefg\\x0d...")
        #expect(policy(8).address("<é@x.test>") == "<é@x.te...", "é is two bytes")
    }

    @Test func theTransactionLineShowsCutAddresses() {
        let r = SessionLog.eventLine(.transaction(LogFormatTests.txn), LogFormatTests.ctx, policy: policy(8))
        let line = LogFormat.text.render(r, timestamp: LogFormatTests.ts, pid: 77)
        #expect(line.contains(" from=<a@x.tes... mail=250 rcpt=<b@x.tes...:250 rcpt=<c@x.tes...:550 "))
    }
}
