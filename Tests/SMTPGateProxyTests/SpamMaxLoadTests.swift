import NIOCore
import NIOEmbedded
import Testing
@testable import SMTPGateCore
@testable import SMTPGateProxy

/// `spam_max_load`: above it spamd is not asked (smtp-gated's "skip antispam if loadavg > spam_max_load");
/// at or below it, or with the option off, it is.
@Suite("spam_max_load")
struct SpamMaxLoadTests {
    final class Bytes: MessageSource {
        let data: [UInt8]
        init(_ s: String) { data = Array(s.utf8) }
        var size: Int { data.count }
        func forEachChunk(maxChunk: Int, on loop: EventLoop,
                          _ body: @escaping (ByteBuffer) -> EventLoopFuture<Void>) -> EventLoopFuture<Void> {
            body(ByteBuffer(bytes: data))
        }
    }

    /// spamd at a unix socket nobody listens on: only a skip is run through `scan` here (an embedded loop
    /// has no sockets); whether spamd would be asked is `spamSkipped`.
    static func services(maxLoad: String?, load: Double?) throws -> ScanServices {
        let extra = maxLoad.map { "spam_max_load \($0)\n" } ?? ""
        let config = try ConfigParser.parse("mode fixed\nfixed_server 127.0.0.1\nantispam_type spamassassin\n"
                                            + "antispam_path /nonexistent/spamd.sock\n" + extra, file: "t.conf")
        return try #require(ScanServices(config: config, limiter: ScanLimiter(limit: 4), load: { load }))
    }

    static func report(_ s: ScanServices) throws -> ScanReport.Result {
        let loop = EmbeddedEventLoop()
        var got: [ScanReport]?
        s.scan(Bytes("Subject: x\r\n\r\nbody\r\n"), on: loop, abandoned: { false }).whenSuccess { got = $0 }
        loop.run()
        let reports = try #require(got)
        return try #require(reports.count == 1 ? reports[0].result : nil)
    }

    @Test func aboveTheLoadSpamdIsSkippedAndSaysWhy() throws {
        #expect(try Self.report(Self.services(maxLoad: "1.5", load: 3.25)) == .skipped("load 3.25 above spam_max_load 1.5"))
    }

    static let asked: [(String?, Double?)] = [("1.5", 1.5), ("1.5", nil), (nil, 99)]

    @Test(arguments: asked)
    func otherwiseSpamdIsAsked(_ maxLoad: String?, _ load: Double?) throws {
        #expect(try Self.services(maxLoad: maxLoad, load: load).spamSkipped() == nil)
    }

    @Test func optionBounds() throws {
        #expect(try ConfigParser.parse("mode fixed\nfixed_server 127.0.0.1\n", file: "t").spamMaxLoad == 0, "off, not smtp-gated's 1")
        for bad in ["-1", "nan", "inf", "lots", "10001"] {
            #expect(throws: ConfigError.self) { try ConfigParser.parse("mode fixed\nfixed_server 127.0.0.1\nspam_max_load \(bad)\n", file: "t") }
        }
        let perm = try ConfigParser.parse("mode fixed\nfixed_server 127.0.0.1\nspool_perm 640\n", file: "t")
        #expect(perm.spoolPerm == 0o640 && ConfigParser.render(perm).contains("\nspool_perm 0640\n"))
        #expect(try ConfigParser.parse("mode fixed\nfixed_server 127.0.0.1\n", file: "t").spoolPerm == 0o600)
    }
}
