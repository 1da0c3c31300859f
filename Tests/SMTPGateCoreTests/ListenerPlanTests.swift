import Testing
@testable import SMTPGateCore

@Suite("Reload: what happens to each listener")
struct ListenerPlanTests {
    func file(_ text: String) throws -> ConfigFile { try ConfigParser.parseFile(text, file: "r.conf") }

    static let before = """
        mode fixed
        fixed_server 127.0.0.1
        [listener a]
        port 2525
        [listener b]
        port 2526
        [forward web]
        port 8443
        fixed_server_port 443
        """

    func plan(_ old: String, _ new: String) throws -> [ListenerPlan] {
        ListenerPlan.diff(running: ListenerEnd.all(try file(old)), next: ListenerEnd.all(try file(new)))
    }

    @Test func anUnchangedFileKeepsEverything() throws {
        #expect(try plan(Self.before, Self.before) == [.keep("a"), .keep("b"), .keep("web")])
    }

    @Test func optionsThatAreNotTheSocketsKeepTheListener() throws {
        let new = Self.before.replacingFirst("[listener a]\nport 2525", with: "[listener a]\nport 2525\ntimeout_idle 5\nmax_per_host 2")
        #expect(try plan(Self.before, new) == [.keep("a"), .keep("b"), .keep("web")])
    }

    @Test(arguments: [
        ("[listener b]\nport 2526", "[listener b]\nport 2527"),
        ("[listener b]\nport 2526", "[listener b]\nport 2526\nbind_address 127.0.0.1"),
        ("[listener b]\nport 2526", "[listener b]\nport 2526\nmode netfilter"),
        ("[listener b]\nport 2526", "[listener b]\nport 2526\nconnect_queue 100"),
    ])
    func changedSocketsRebind(old: String, new: String) throws {
        #expect(try plan(Self.before, Self.before.replacingFirst(old, with: new)) == [.keep("a"), .rebind("b"), .keep("web")])
    }

    @Test func aForwardsPortRangeIsItsSockets() throws {
        let new = Self.before.replacingFirst("port 8443\nfixed_server_port 443", with: "port 8443-8444\nfixed_server_port 443")
        #expect(try plan(Self.before, new) == [.keep("a"), .keep("b"), .rebind("web")])
    }

    @Test func addedAndRemovedByName() throws {
        let new = """
            mode fixed
            fixed_server 127.0.0.1
            [listener c]
            port 2527
            [listener a]
            port 2525
            """
        #expect(try plan(Self.before, new) == [.add("c"), .keep("a"), .remove("b"), .remove("web")])
    }

    @Test func aRenamedListenerIsAnotherListener() throws {
        let new = Self.before.replacingFirst("[listener a]", with: "[listener a2]")
        #expect(try plan(Self.before, new) == [.add("a2"), .keep("b"), .keep("web"), .remove("a")])
    }

    @Test func theImplicitMainListenerAndItsSectionedSuccessor() throws {
        let plain = "mode fixed\nfixed_server 127.0.0.1\nport 2525\n"
        #expect(try plan(plain, plain + "timeout_idle 9\n") == [.keep("main")])
        #expect(try plan(plain, "mode fixed\nfixed_server 127.0.0.1\n[listener main]\nport 2525\n") == [.keep("main")])
        #expect(try plan(plain, "mode fixed\nfixed_server 127.0.0.1\n[listener in]\nport 2525\n") == [.add("in"), .remove("main")])
    }

    @Test func endsAreShownForTheLog() throws {
        let ends = ListenerEnd.all(try file(Self.before.replacingFirst("port 8443", with: "port 8443-8445\nbind_address ::1")
            .replacingFirst("fixed_server_port 443", with: "fixed_server_port 443")))
        #expect(ends.map(\.end.text) == ["0.0.0.0:2525", "0.0.0.0:2526", "[::1]:8443-8445"])
        #expect(ends.map(\.end.kind) == [.smtp, .smtp, .forward])
    }
}

extension String {
    fileprivate func replacingFirst(_ target: String, with replacement: String) -> String {
        guard let r = range(of: target) else { return self }
        return replacingCharacters(in: r, with: replacement)
    }
}
