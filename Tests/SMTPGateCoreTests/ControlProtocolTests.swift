import Testing
@testable import SMTPGateCore

@Suite("Control socket requests and replies")
struct ControlProtocolTests {
    @Test(arguments: [
        ControlRequest.listLocks, .removeLock(key: "10.0.0.5"), .show(key: "bob@10.0.0.5"),
        .addLock(key: "2001:db8:1::/64", seconds: 600, reason: "abuse report"), .addLock(key: "10.0.0.5", seconds: nil, reason: "x"),
    ])
    func requestsRoundTrip(_ r: ControlRequest) throws {
        #expect(try ControlRequest(parsing: Array(r.line.utf8)) == r)
    }

    @Test func tabsAndLineEndsInTextCannotSplitARequest() throws {
        let r = ControlRequest.addLock(key: "10.0.0.5", seconds: 60, reason: "a\tb\nlocks\tremove\t10.0.0.6")
        #expect(!r.line.contains("\n"))
        #expect(try ControlRequest(parsing: Array(r.line.utf8)) == .addLock(key: "10.0.0.5", seconds: 60, reason: "a b locks remove 10.0.0.6"))
    }

    @Test(arguments: ["", "locks", "locks\tlist\textra", "status\tnow", "stop ", "locks\tadd\t10.0.0.5\t0\tr", "locks\tadd\t10.0.0.5\t-5\tr",
                      "locks\tadd\t10.0.0.5\t99999999999999999999\tr", "locks\tadd\t10.0.0.5", "locks\tdrop\tx", "\u{0}\u{0}"])
    func hostileRequestsAreRefused(_ text: String) {
        #expect(throws: ControlRequest.ParseError.self) { try ControlRequest(parsing: Array(text.utf8)) }
    }

    @Test func anOverlongRequestIsRefusedBeforeParsing() {
        #expect(throws: ControlRequest.ParseError.tooLong) {
            try ControlRequest(parsing: [UInt8](repeating: 0x41, count: ControlRequest.maxLine + 1))
        }
    }

    @Test func repliesRoundTrip() {
        let replies: [ControlReply] = [
            .lock(.init(key: "10.0.0.5", cause: "virus", created: 1000, expires: 4600, reason: "virus Eicar")),
            .lock(.init(key: "bob@10.0.0.6", cause: "admin", created: 1000, expires: nil, reason: "by hand")),
            .counter(.init(kind: "messages", limit: 10, seconds: 60, count: 3)), .ok, .error("10.0.0.7 is not locked"),
        ]
        for r in replies { #expect(ControlReply(parsing: Substring(r.line)) == r) }
    }

    @Test(arguments: ["", "lock\tx", "counter\tmessages\tten\t60\t1", "lock\tk\tc\tnan?\t-\tr", "oks", "error"])
    func unreadableRepliesAreNil(_ text: String) {
        #expect(ControlReply(parsing: Substring(text)) == nil)
    }
}
