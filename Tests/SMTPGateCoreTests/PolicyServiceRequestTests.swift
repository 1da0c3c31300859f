import Testing
@testable import SMTPGateCore

@Suite("Policy service: request encoding")
struct PolicyServiceRequestTests {
    /// The attribute names in the order Postfix 3.12's check_policy_service sends them.
    static let postfixOrder = [
        "request", "protocol_state", "protocol_name", "client_address", "client_name", "client_port",
        "reverse_client_name", "server_address", "server_port", "helo_name", "sender", "recipient",
        "recipient_count", "queue_id", "instance", "size", "etrn_domain", "stress", "sasl_method", "sasl_username",
        "sasl_sender", "ccert_subject", "ccert_issuer", "ccert_fingerprint", "ccert_pubkey_fingerprint",
        "encryption_protocol", "encryption_cipher", "encryption_keysize", "tls_sni", "policy_context",
        "compatibility_level", "mail_version",
    ]

    func lines(_ request: PolicyRequest) -> [String] {
        latin1(request.encode()).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    }

    @Test func everyAttributeInPostfixOrderThenAnEmptyLine() {
        let request = PolicyRequest(protocolState: .rcpt)
        let encoded = latin1(request.encode())
        #expect(encoded.hasSuffix("\n\n"))
        let all = lines(request)
        #expect(all.suffix(2) == ["", ""])
        let names = all.dropLast(2).map { String($0.prefix { $0 != "=" }) }
        #expect(names == Self.postfixOrder)
    }

    @Test func unknownValuesAreEmptyNumbersZeroNamesUnknown() {
        let encoded = latin1(PolicyRequest(protocolState: .connect).encode())
        #expect(encoded == """
            request=smtpd_access_policy
            protocol_state=CONNECT
            protocol_name=SMTP
            client_address=
            client_name=unknown
            client_port=
            reverse_client_name=unknown
            server_address=
            server_port=
            helo_name=
            sender=
            recipient=
            recipient_count=0
            queue_id=
            instance=
            size=0
            etrn_domain=
            stress=
            sasl_method=
            sasl_username=
            sasl_sender=
            ccert_subject=
            ccert_issuer=
            ccert_fingerprint=
            ccert_pubkey_fingerprint=
            encryption_protocol=
            encryption_cipher=
            encryption_keysize=0
            tls_sni=
            policy_context=
            compatibility_level=
            mail_version=


            """)
    }

    @Test func aFullRequest() {
        let request = PolicyRequest(protocolState: .rcpt, protocolName: "ESMTP", clientAddress: "192.0.2.7",
                                    clientName: "", clientPort: 40123, reverseClientName: "mx.example.org",
                                    serverAddress: "198.51.100.1", serverPort: 25, heloName: "mx.example.org",
                                    sender: "a@example.org", recipient: "b@example.net", recipientCount: 0,
                                    queueID: "", instance: "1a2b.3c4d.1", size: 12345, encryptionKeysize: 256,
                                    policyContext: "submission")
        let all = lines(request)
        #expect(all.contains("client_name=unknown"))
        #expect(all.contains("reverse_client_name=mx.example.org"))
        #expect(all.contains("client_port=40123"))
        #expect(all.contains("server_port=25"))
        #expect(all.contains("protocol_name=ESMTP"))
        #expect(all.contains("sender=a@example.org"))
        #expect(all.contains("recipient=b@example.net"))
        #expect(all.contains("size=12345"))
        #expect(all.contains("encryption_keysize=256"))
        #expect(all.contains("policy_context=submission"))
        #expect(PolicyRequest.ProtocolState.endOfMessage.rawValue == "END-OF-MESSAGE")
    }

    @Test func hostileValuesCannotAddAttributesOrEndTheRequest() {
        let request = PolicyRequest(protocolState: .rcpt, heloName: "x\r\nrecipient=forged\n\nfoo",
                                    sender: "a\u{0}b@example.org", recipient: "c=d@example.net\r")
        let encoded = request.encode()
        // Exactly one line per attribute and one empty line, whatever the values.
        #expect(encoded.filter { $0 == UInt8(ascii: "\n") }.count == Self.postfixOrder.count + 1)
        #expect(!encoded.contains(0))
        #expect(!encoded.contains(UInt8(ascii: "\r")))
        let all = lines(request)
        #expect(all.contains("helo_name=x??recipient=forged??foo"))
        #expect(all.contains("sender=a?b@example.org"))
        // '=' in a value stays: a server splits at the first one.
        #expect(all.contains("recipient=c=d@example.net?"))
        #expect(all.filter { $0.hasPrefix("recipient=") }.count == 1)
    }

    @Test func hugeValuesAreBounded() {
        let big = String(repeating: "a", count: 64 * 1024)
        let request = PolicyRequest(protocolState: .mail, heloName: big, sender: big + "\n" + big)
        let all = lines(request)
        let helo = all.first { $0.hasPrefix("helo_name=") }!
        #expect(helo.utf8.count == "helo_name=".utf8.count + PolicyRequest.maxValueBytes)
        #expect(request.encode().count < 3 * PolicyRequest.maxValueBytes)
    }

    @Test func cuttingNeverSplitsACharacter() {
        // 4095 ASCII bytes then a 3-byte character straddling the bound: the character goes whole.
        let value = String(repeating: "a", count: PolicyRequest.maxValueBytes - 1) + "\u{20ac}tail"
        let cut = PolicyRequest.safe(value)
        #expect(cut.count == PolicyRequest.maxValueBytes - 1)
        #expect(String(validating: cut, as: UTF8.self) != nil)
        let exact = String(repeating: "\u{e9}", count: PolicyRequest.maxValueBytes / 2 + 10)
        let cutExact = PolicyRequest.safe(exact)
        #expect(cutExact.count == PolicyRequest.maxValueBytes)
        #expect(String(validating: cutExact, as: UTF8.self) != nil)
    }
}
