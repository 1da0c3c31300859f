import Testing
@testable import SMTPGateCore

/// The admin listener's HTML status page: what a browser shows, with hostile client text in every cell it reaches.
@Suite("Status page: HTML rendering and escaping")
struct StatusPageTests {
    static func status(helo: String? = "mx.example", ident: String? = nil, text: String? = nil, omitted: Int = 0,
                       locks: Int? = nil) -> DaemonStatus {
        let session = SessionSnapshot(id: text ?? "abc123", listener: text ?? "in", kind: .smtp, client: text ?? "192.0.2.7:4000",
                                      destination: text ?? "198.51.100.1:25", state: "relay", ident: ident, helo: helo,
                                      transactions: 2, bytesIn: 1200, bytesOut: 300, age: 4.2)
        return DaemonStatus(version: "0.1.0", pid: 42, started: 0, uptime: 3700, configFile: text ?? "/etc/smtpgate.conf",
                            listeners: [.init(name: text ?? "in", kind: .smtp, address: "10.77.0.1:25", mode: "fixed", sessions: 1)],
                            sessions: [session], sessionsOmitted: omitted, locks: locks, trackedClients: locks.map { _ in 9 })
    }

    /// Each hostile string with the text the page must carry instead, spelled out rather than taken from `escape`.
    static let hostile = [
        ("<script>alert(1)</script>", "&lt;script&gt;alert(1)&lt;/script&gt;"),
        ("\"><img src=x onerror=alert(1)>", "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;"),
        ("a'b&c", "a&#39;b&amp;c"),
    ]

    @Test(arguments: hostile)
    func heloAndIdentAreShownAsTextNeverAsMarkup(_ raw: String, _ shown: String) {
        let page = StatusPage.html(Self.status(helo: raw, ident: raw))
        #expect(!page.contains("<script") && !page.contains("<img") && !page.contains(raw))
        #expect(page.contains("<td>\(shown)</td><td>\(shown)</td></tr>"), "ident and HELO cells")
    }

    @Test(arguments: hostile)
    func everyOtherNetworkValueIsEscapedToo(_ raw: String, _ shown: String) {
        let page = StatusPage.html(Self.status(text: raw))
        #expect(!page.contains("<script") && !page.contains("<img") && !page.contains(raw))
        #expect(page.components(separatedBy: shown).count - 1 == 6, "session id, listener twice, client, destination, config")
        #expect(page.contains("config \(shown),"))
    }

    @Test func controlBytesNeverReachThePage() {
        let page = StatusPage.html(Self.status(helo: "a\nb\u{0}c\u{1b}[31m"))
        #expect(page.contains("<td>a\u{FFFD}b\u{FFFD}c\u{FFFD}[31m</td></tr>"))
        #expect(!page.unicodeScalars.contains { $0.value == 0 || $0.value == 0x1b })
    }

    @Test func headerListenersSessionsLocksCountersAndRefresh() {
        var s = Self.status(ident: "bob", omitted: 3, locks: 2)
        s.counters = [.init(name: "smtpgate_sessions_total", value: 17), .init(name: "x_total", value: 0.5)]
        s.listeners[0].counts = ListenerCounts(ended: 40, refused: 3, transactions: 12, bytesIn: 9000, bytesOut: 700)
        let page = StatusPage.html(s, refresh: 10)
        #expect(page.hasPrefix("<!DOCTYPE html>"))
        #expect(page.contains(#"<meta http-equiv="refresh" content="10">"#))
        #expect(page.contains("<title>smtpgate on PID 42</title>"))
        #expect(page.contains("<h1>smtpgate 0.1.0</h1>") && page.contains("pid 42, up 01:01:40, config /etc/smtpgate.conf, 1 open"))
        #expect(page.contains(#"<tr><td>in</td><td>smtp</td><td>10.77.0.1:25</td><td>fixed</td><td class="n">1</td>"#
                              + #"<td class="n">40</td><td class="n">3</td><td class="n">12</td><td class="n">9000</td>"#
                              + #"<td class="n">700</td></tr>"#))
        #expect(page.contains(#"<tr><td>abc123</td><td>in</td><td>smtp</td><td>relay</td><td>4.2s</td><td>192.0.2.7:4000</td>"#
                              + #"<td>198.51.100.1:25</td><td class="n">2</td><td class="n">1200</td><td class="n">300</td>"#
                              + "<td>bob</td><td>mx.example</td></tr>"))
        #expect(page.contains("3 more sessions not listed"))
        #expect(page.contains("locks 2, rate-counted clients 9") && !page.contains("abuse control is off"))
        #expect(page.contains(#"<td>smtpgate_sessions_total</td><td class="n">17</td>"#), "integers without a point")
        #expect(page.contains(#"<td>x_total</td><td class="n">0.5</td>"#))
        #expect(!page.contains("<script"))
    }

    @Test func abuseControlOffNothingOmittedAndEmptyTablesAreSaid() {
        var s = Self.status()
        s.sessions = []
        let page = StatusPage.html(s)
        #expect(page.contains("abuse control is off"))
        #expect(!page.contains("not listed"))
        #expect(page.contains(#"<td colspan="12">none</td>"#) && page.contains(#"<td colspan="2">none</td>"#))
        #expect(!page.contains("<script") && !page.contains("http://") && !page.contains("https://") && !page.contains("src="),
                "no script and nothing loaded from elsewhere")
    }

    @Test(arguments: [(0, "1"), (-5, "1"), (5, "5")])
    func refreshIsNeverAnInstantLoop(_ asked: Int, _ shown: String) {
        #expect(StatusPage.html(Self.status(), refresh: asked).contains(#"content="\#(shown)""#))
    }

    @Test func escapeLeavesOrdinaryTextAlone() {
        #expect(StatusPage.escape("") == "")
        #expect(StatusPage.escape("é 日本 mx.example") == "é 日本 mx.example")
        #expect(StatusPage.escape("<&>\"'") == "&lt;&amp;&gt;&quot;&#39;")
        #expect(StatusPage.escape("\u{7f}\u{85}\t") == "\u{FFFD}\u{FFFD}\u{FFFD}", "DEL and C1 controls too")
    }
}
