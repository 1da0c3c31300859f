import Testing
@testable import SMTPGateCore

@Suite struct LockCauseTests {
    func message(_ v: String) -> String? {
        do {
            _ = try LockCause.parseList(v)
            return nil
        } catch {
            return error.message
        }
    }

    @Test func smtpGatedWords() throws {
        #expect(try LockCause.parseList("virus,spam") == [.virus, .spam])
        #expect(try LockCause.parseList("virus,spam,maxhost,maxident,dnsbl,regex,spf,earlytalk,ratelimit") == Set(LockCause.configurable))
        #expect(try LockCause.parseList("virus, spam") == [.virus, .spam])
        #expect(try LockCause.parseList("Virus SPAM\tRateLimit") == [.virus, .spam, .ratelimit])
        #expect(try LockCause.parseList(",virus,,spam,") == [.virus, .spam])
        #expect(try LockCause.parseList("virus,virus") == [.virus])
    }

    @Test func neverAndNoneAreEmpty() throws {
        #expect(try LockCause.parseList("never") == [])
        #expect(try LockCause.parseList("none") == [])
        #expect(try LockCause.parseList(" NEVER ") == [])
        #expect(try LockCause.parseList("never,virus") == [.virus])
    }

    @Test func smtpGatedNumbers() throws {
        #expect(try LockCause.parseList("0") == [])
        #expect(try LockCause.parseList("1") == [.virus])
        #expect(try LockCause.parseList("2") == [.spam])
        #expect(try LockCause.parseList("16") == [.maxhost])
        #expect(try LockCause.parseList("0x1000") == [.ratelimit])
        #expect(try LockCause.parseList("0X800") == [.earlytalk])
        #expect(message("3") == "3 is not one of smtp-gated's lock_on values; expected never or a list of virus, spam, maxhost, maxident, dnsbl, regex, spf, earlytalk, ratelimit")
        #expect(message("0x3") != nil)
        #expect(message("4097") != nil)
    }

    @Test func adminAndImportedAreNotForLockOn() {
        #expect(message("admin") != nil)
        #expect(message("virus,imported") != nil)
        #expect(LockCause(rawValue: "admin") == .admin)
    }

    @Test func hostileValues() {
        #expect(message("") == "lock_on needs a value; expected never or a list of virus, spam, maxhost, maxident, dnsbl, regex, spf, earlytalk, ratelimit")
        #expect(message(" , ,") != nil)
        #expect(message("virus,size_limit") == "unknown lock_on cause \"size_limit\"; expected never or a list of virus, spam, maxhost, maxident, dnsbl, regex, spf, earlytalk, ratelimit")
        #expect(message("virus\0") == "unknown lock_on cause \"virus?\"; expected never or a list of virus, spam, maxhost, maxident, dnsbl, regex, spf, earlytalk, ratelimit")
        #expect(message("vir\nus") != nil)
        #expect(message("-1") != nil)
        #expect(message("99999999999999999999999") != nil)
        #expect(message("0x") != nil)
        #expect(message("1 0") != nil)
        #expect(message("earlytalker") != nil)
        let long = String(repeating: "virus,", count: 1000)
        #expect(message(long)?.hasPrefix("lock_on value is too long: \"virus,virus,") == true)
        #expect((message(long)?.utf8.count ?? 0) < 120)
    }

    @Test func showIsStable() throws {
        #expect(LockCause.show([]) == "never")
        #expect(LockCause.show([.ratelimit, .virus, .spf]) == "virus,spf,ratelimit")
        let all = Set(LockCause.configurable)
        #expect(try LockCause.parseList(LockCause.show(all)) == all)
    }
}
