import Foundation
import Testing
@testable import SMTPGateCore

/// smtpgate.conf(5)'s "Scope and reload of every option" is written by hand; these tests hold it to the
/// table the parser uses (OptionScope), so an option added to one and not the other fails here.
@Suite("smtpgate.conf(5) scope table")
struct OptionScopeManPageTests {
    /// The options only refused with a reason (they have no scope a user could use) need not be listed.
    static let refusedOnly: Set<String> = ["chroot_path", "dspam_storage"]

    /// Each group's heading and the names it lists, with the reload mark written after a name.
    static func groups() throws -> [String: [String: OptionScope.Reload]] {
        let pageURL = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("man/smtpgate.conf.5")
        let page = try String(contentsOf: pageURL, encoding: .utf8)
        let start = try #require(page.range(of: ".SS \"Scope and reload of every option\""))
        let rest = page[start.upperBound...]
        let end = rest.range(of: "\n.PP\n")?.lowerBound ?? rest.endIndex
        var text: [String: String] = [:]
        var heading: String?
        // A group's list ends with the first text line ending in a full stop; what follows is prose.
        var closed = false
        var lines = rest[..<end].split(separator: "\n", omittingEmptySubsequences: false).makeIterator()
        while let line = lines.next() {
            if line == ".TP", let next = lines.next(), next.hasPrefix(".B \"") {
                heading = String(next.dropFirst(4).dropLast())
                text[heading!] = ""
                closed = false
            } else if let h = heading, !closed, !line.hasPrefix(".") {
                text[h]! += " " + line
                closed = line.hasSuffix(".")
            }
        }
        var out: [String: [String: OptionScope.Reload]] = [:]
        for (h, t) in text {
            out[h] = Dictionary(names(in: Substring(t)), uniquingKeysWith: { a, _ in a })
        }
        return out
    }

    /// `name (restart)` / `name (rebinds)` / `name`; words without an underscore count only if they are options.
    static func names(in line: Substring) -> [(String, OptionScope.Reload)] {
        let words = line.split(whereSeparator: { $0 == " " || $0 == "," || $0 == "." })
        var out: [(String, OptionScope.Reload)] = []
        for w in words {
            if w == "(restart)", !out.isEmpty { out[out.count - 1].1 = .restart; continue }
            if w == "(rebinds)", !out.isEmpty { out[out.count - 1].1 = .rebinds; continue }
            let name = String(w)
            if Option.byName[name] != nil { out.append((name, .applies)) }
        }
        return out
    }

    static func options(_ scope: OptionScope) -> Set<String> {
        Set(Option.all.map(\.name).filter { OptionScope.of($0) == scope && !refusedOnly.contains($0) })
    }

    @Test(arguments: [
        (OptionScope.daemon, "Daemon only: before the first section"),
        (.connection, "SMTP listeners and forwards: global, [listener] or [forward]"),
        (.forward, "Forwards only: global or [forward]"),
    ])
    func everyOptionOfAGroupIsListedWithItsReloadMark(scope: OptionScope, heading: String) throws {
        let listed = try #require(try Self.groups()[heading], "no group \(heading)")
        #expect(Set(listed.keys) == Self.options(scope),
                "missing: \(Self.options(scope).subtracting(listed.keys).sorted()), not \(scope): \(Set(listed.keys).subtracting(Self.options(scope)).sorted())")
        for (name, mark) in listed {
            #expect(mark == OptionScope.reload(name), "\(name) is marked \(mark), reload does \(OptionScope.reload(name))")
        }
    }

    /// The listener group ends with "every other option"; what it names must be listener options, and the
    /// ones it leaves to a family (msg_*, regex_*) are the only ones not named.
    @Test func theListenerGroupNamesListenerOptions() throws {
        let listed = try #require(try Self.groups()["SMTP listeners only: global or [listener]"])
        let wrong = listed.keys.filter { OptionScope.of($0) != .listener }
        #expect(wrong.isEmpty, "not listener options: \(wrong.sorted())")
        let unnamed = Self.options(.listener).subtracting(listed.keys)
            .filter { !$0.hasPrefix("msg_") && !$0.hasPrefix("regex_") }
        #expect(unnamed.isEmpty, "listener options the page does not name: \(unnamed.sorted())")
        #expect(listed.values.allSatisfy { $0 == .applies })
    }
}
