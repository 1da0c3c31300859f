import Testing
@testable import SMTPGateCore

/// access(5) values parsed into actions, and the values SMTPGate refuses.
@Suite("access map actions")
struct AccessMapActionTests {
    func action(_ value: String) throws -> AccessAction { try AccessAction(parsing: value) }

    func refusal(_ value: String) -> String? {
        do {
            _ = try AccessAction(parsing: value)
            return nil
        } catch {
            return error.message
        }
    }

    @Test func acceptActions() throws {
        #expect(try action("OK") == .ok)
        #expect(try action("ok") == .ok, "action words are case-insensitive")
        #expect(try action("RELAY") == .ok)
        #expect(try action("OK trailing text is ignored") == .ok)
        #expect(try action("1735689600") == .ok, "all-numeric: a pop-before-smtp time stamp")
        #expect(try action("DUNNO") == .dunno)
        #expect(try action("dunno whatever") == .dunno)
    }

    @Test func rejectAndDeferTakeDefaultsAndEnhancedCodes() throws {
        #expect(try action("REJECT") == .reject(AccessReply(code: 554, enhanced: "5.7.1", text: nil)))
        #expect(try action("Reject go away") == .reject(AccessReply(code: 554, enhanced: "5.7.1", text: "go away")))
        #expect(try action("REJECT 5.7.9 go\taway") == .reject(AccessReply(code: 554, enhanced: "5.7.9", text: "go\taway")))
        #expect(try action("REJECT 5.7.9") == .reject(AccessReply(code: 554, enhanced: "5.7.9", text: nil)))
        #expect(try action("DEFER later") == .deferred(AccessReply(code: 450, enhanced: "4.7.1", text: "later")))
        #expect(try action("DEFER_IF_PERMIT x") == .deferIfPermit(AccessReply(code: 450, enhanced: "4.7.1", text: "x")))
        #expect(try action("defer_if_reject") == .deferIfReject(AccessReply(code: 450, enhanced: "4.7.1", text: nil)))
        #expect(try action("550 5.1.1 no such user") == .reject(AccessReply(code: 550, enhanced: "5.1.1", text: "no such user")))
        #expect(try action("550 no") == .reject(AccessReply(code: 550, enhanced: "5.7.1", text: "no")))
        #expect(try action("451 4.3.0 try later") == .deferred(AccessReply(code: 451, enhanced: "4.3.0", text: "try later")))
        #expect(try action("450 busy") == .deferred(AccessReply(code: 450, enhanced: "4.7.1", text: "busy")))
        #expect(try action("550 5.1.10x text") == .reject(AccessReply(code: 550, enhanced: "5.7.1", text: "5.1.10x text")),
                "not an enhanced code, so text")
    }

    @Test func fourTwentyOneAndFiveTwentyOneDisconnect() throws {
        #expect(try action("421 closing") == .disconnect(AccessReply(code: 421, enhanced: "4.7.1", text: "closing")))
        #expect(try action("521 5.7.0 go away bot") == .disconnect(AccessReply(code: 521, enhanced: "5.7.0", text: "go away bot")))
    }

    @Test func logAndHeaderActions() throws {
        #expect(try action("WARN odd client") == .warn("odd client"))
        #expect(try action("INFO") == .info(""))
        #expect(try action("INFO seen") == .info("seen"))
        #expect(try action("PREPEND X-Checked: yes") == .prepend("X-Checked: yes"))
        #expect(try action("PREPEND X-Empty:") == .prepend("X-Empty:"))
    }

    @Test func badCodesAreErrors() {
        #expect(refusal("550")?.contains("takes as OK") == true, "a bare code is all-numeric: Postfix would permit")
        #expect(refusal("421")?.contains("takes as OK") == true)
        #expect(refusal("250 fine")?.contains("4NN or 5NN") == true)
        #expect(refusal("600 x")?.contains("4NN or 5NN") == true)
        #expect(refusal("5500 x")?.contains("4NN or 5NN") == true)
        #expect(refusal("550 4.7.1 mixed")?.contains("class must be 5") == true)
        #expect(refusal("450 5.7.1 mixed")?.contains("class must be 4") == true)
        #expect(refusal("REJECT 4.7.1 mixed")?.contains("class must be 5") == true)
        #expect(refusal("DEFER 2.0.0 mixed")?.contains("class must be 4") == true)
    }

    @Test func queueActionsHaveNoMeaningInARelay() {
        #expect(refusal("REDIRECT a@example.com")?.contains("check_destination_access maps only") == true)
        for value in ["FILTER smtp:[127.0.0.1]:10025", "HOLD", "DISCARD", "BCC a@example.com", "delay 5m"] {
            #expect(refusal(value)?.contains("has no meaning in SMTPGate (it relays; it does not queue)") == true, "\(value)")
        }
        #expect(refusal("HANGUP")?.contains("421") == true)
    }

    @Test func restrictionListsAndClassesAreNotSupported() {
        for value in ["permit", "permit_mynetworks", "reject_unauth_destination", "check_client_access hash:/x", "defer_unauth_destination", "sleep 5"] {
            #expect(refusal(value)?.contains("restriction lists as map values are not supported") == true, "\(value)")
        }
        #expect(refusal("my_restriction_class")?.contains("unknown action") == true)
        #expect(refusal("MAYBE")?.contains("unknown action") == true)
    }

    @Test func hostileValues() {
        #expect(refusal("REJECT a\rb")?.contains("control character 0xd") == true, "a CR would split the reply")
        #expect(refusal("REJECT a\u{0}b")?.contains("control character 0x0") == true)
        #expect(refusal("REJECT a\u{7f}") != nil)
        #expect(refusal("REJECT " + repeated("x", 481))?.contains("fit a reply line") == true)
        #expect(refusal("REJECT " + repeated("x", 480)) == nil)
        #expect(refusal("PREPEND no colon here")?.contains("Name: value") == true)
        #expect(refusal("PREPEND X Bad: v")?.contains("without spaces") == true)
        #expect(refusal("PREPEND : v")?.contains("without spaces") == true)
        #expect(refusal("PREPEND X-\u{e9}: v")?.contains("printable ASCII") == true)
        #expect(refusal("PREPEND X-Long: " + repeated("v", 991))?.contains("at most 998") == true)
        #expect(refusal("PREPEND X-Long: " + repeated("v", 990)) == nil, "998 bytes: the limit itself")
        #expect(refusal("PREPEND")?.contains("Name: value") == true)
        let shown = refusal("NOPE\u{1b}[31m") ?? ""
        #expect(!shown.contains("\u{1b}"), "file text in messages is escaped: \(shown)")
    }
}
