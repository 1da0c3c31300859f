import Testing
@testable import SMTPGateCore

/// PCRERegex's compile flags and capture groups, which the regexp: and pcre: tables use for `$1`.
@Suite("access map PCRE groups and flags")
struct AccessMapRegexGroupsTests {
    @Test func groupsGiveByteRangesAndNilForGroupsThatTookNoPart() throws {
        let r = try PCRERegex("^(a)(x)?(b+)(y)?$", flags: [])
        #expect(r.captureCount == 4)
        #expect(r.groups(b("abb")) == .match([0..<1, nil, 1..<3, nil]))
        #expect(r.groups(b("abby")) == .match([0..<1, nil, 1..<3, 3..<4]))
        #expect(r.groups(b("ab!")) == .noMatch)
        #expect(try PCRERegex("^$", flags: []).groups(b("")) == .match([]))
        #expect(try PCRERegex("(?<n>z)", flags: []).groups(b("az")) == .match([1..<2]), "named groups count too")
    }

    @Test func groupsHitTheSameLimitsAsMatch() throws {
        let r = try PCRERegex("^(a+)+$", flags: [])
        guard case .failed(let why) = r.groups(Array(repeating: UInt8(ascii: "a"), count: 5_000) + b("!")) else {
            Issue.record("expected a limit")
            return
        }
        #expect(why.contains("limit"), "\(why)")
    }

    @Test func flagsAreCompileOptions() throws {
        #expect(try PCRERegex("^abc$", flags: [.caseless]).match(b("ABC")) == .match)
        #expect(try PCRERegex("^abc$", flags: []).match(b("ABC")) == .noMatch)
        #expect(try PCRERegex("^a.b$", flags: [.dotAll]).match(b("a\nb")) == .match)
        #expect(try PCRERegex("^a.b$", flags: []).match(b("a\nb")) == .noMatch)
        #expect(try PCRERegex("^b$", flags: [.multiline]).match(b("a\nb")) == .match)
        #expect(try PCRERegex("a b", flags: [.extended]).match(b("ab")) == .match)
        #expect(try PCRERegex("b", flags: [.anchored]).match(b("ab")) == .noMatch)
        #expect(try PCRERegex("a$", flags: [.dollarEndOnly]).match(b("a\n")) == .noMatch)
        #expect(try PCRERegex("a$", flags: []).match(b("a\n")) == .match)
        #expect(try PCRERegex("^(a+)", flags: [.ungreedy]).groups(b("aaa")) == .match([0..<1]))
    }

    @Test func theOldInitializerIsCaselessWithNoOtherFlags() throws {
        let r = try PCRERegex("x")
        #expect(r.caseless)
        #expect(r.flags == [.caseless])
        #expect(try PCRERegex("x", caseless: false).flags == [])
        #expect(r == (try PCRERegex("x", flags: [.caseless])))
        #expect(r != (try PCRERegex("x", flags: [.caseless, .dotAll])))
    }
}
