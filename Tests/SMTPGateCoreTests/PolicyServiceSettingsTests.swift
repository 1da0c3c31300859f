import Testing
@testable import SMTPGateCore

@Suite("Policy service: settings and endpoints")
struct PolicyServiceSettingsTests {
    func parse(_ text: String, inheriting base: PolicyServiceSettings? = nil) throws -> PolicyServiceSettings {
        try PolicyServiceSettings.parse(text, inheriting: base)
    }

    func error(_ text: String) -> String? {
        do {
            _ = try PolicyServiceSettings.parse(text)
            return nil
        } catch {
            return error.message
        }
    }

    let local = PolicyServiceEndpoint.inet(IPAddress("127.0.0.1")!, 10023)

    @Test func plainEndpointGetsPostfixDefaultsButFailsOpen() throws {
        let s = try parse("inet:127.0.0.1:10023")
        #expect(s == PolicyServiceSettings(endpoint: local))
        #expect(s.timeout == 100 && s.maxIdle == 300 && s.maxTTL == 1000)
        #expect(s.tryLimit == 2 && s.retryDelay == 1 && s.requestLimit == 0)
        #expect(s.defaultAction == "DUNNO")
        #expect(s.policyContext == "")
        #expect(PolicyServiceSettings.postfixDefaultAction == "451 4.3.5 Server configuration problem")
        #expect(try parse("  inet:127.0.0.1:10023\t") == s)
    }

    @Test func endpoints() throws {
        #expect(try parse("inet:[::1]:10023").endpoint == .inet(IPAddress("::1")!, 10023))
        #expect(try parse("inet:[2001:DB8::1]:9998").endpoint.description == "inet:[2001:db8::1]:9998")
        #expect(try parse("inet:192.0.2.1:1").endpoint.description == "inet:192.0.2.1:1")
        #expect(try parse("unix:/run/postgrey/postgrey.sock").endpoint == .unix("/run/postgrey/postgrey.sock"))
        #expect(try parse("local:/run/policy").endpoint == .unix("/run/policy"))
    }

    @Test func endpointErrors() {
        #expect(error("inet:localhost:10023") == "policy service 'inet:localhost:10023': an IPv4 or IPv6 address is needed, not a host name")
        #expect(error("inet:policy.example.org:10023")!.contains("an IPv4 or IPv6 address is needed"))
        #expect(error("inet:::1:10023") == "policy service 'inet:::1:10023': write an IPv6 address in brackets (inet:[::1]:10023)")
        #expect(error("inet:127.0.0.1:0")!.contains("expected a port from 1 to 65535"))
        #expect(error("inet:127.0.0.1:65536")!.contains("expected a port from 1 to 65535"))
        #expect(error("inet:127.0.0.1:+25")!.contains("expected a port"))
        #expect(error("inet:127.0.0.1:smtp")!.contains("expected a port"))
        #expect(error("inet:127.0.0.1")!.contains("expected a port") || error("inet:127.0.0.1")!.contains("inet:ADDRESS:PORT"))
        #expect(error("inet:10023")!.contains("inet:ADDRESS:PORT"))
        #expect(error("unix:private/policy") == "policy service 'unix:private/policy': a unix socket needs an absolute path (unix:/run/postgrey.sock)")
        #expect(error("unix:/" + String(repeating: "p", count: 120))!.contains("at most 107 bytes"))
        #expect(error("127.0.0.1:10023") == "policy service '127.0.0.1:10023': expected inet:ADDRESS:PORT or unix:/PATH")
        #expect(error("") == "policy service: empty value, expected inet:ADDRESS:PORT or unix:/PATH")
        #expect(error("inet:127.0.0.1:10023 timeout=10s")!.contains("per-service settings go in braces"))
        // Errors carry no file or line: the caller adds them.
        #expect(!(error("inet:x:1")!.contains("line")))
    }

    @Test func perServiceForm() throws {
        let s = try parse("{ inet:127.0.0.1:10023, timeout=10s, default_action=DUNNO, max_idle=1m, max_ttl=1h, try_limit=3 }")
        #expect(s == PolicyServiceSettings(endpoint: local, timeout: 10, maxIdle: 60, maxTTL: 3600, tryLimit: 3))
        let t = try parse("""
            {
              inet:[::1]:9998
              retry_delay=0 request_limit=5
              { default_action = 451 4.3.5 See https://www.example.com/support1 }
              {policy_context=submission, inbound}
            }
            """)
        #expect(t.endpoint == .inet(IPAddress("::1")!, 9998))
        #expect(t.retryDelay == 0 && t.requestLimit == 5)
        #expect(t.defaultAction == "451 4.3.5 See https://www.example.com/support1")
        #expect(t.policyContext == "submission, inbound")
        #expect(try parse("{inet:127.0.0.1:10023}") == PolicyServiceSettings(endpoint: local))
        #expect(try parse("{ inet:127.0.0.1:10023, timeout=0.5s, max_idle=1d, max_ttl=1w }").timeout == 0.5)
        #expect(try parse("{ inet:127.0.0.1:10023, timeout=30 }").timeout == 30)
        // A later setting wins, as in Postfix.
        #expect(try parse("{ inet:127.0.0.1:10023, try_limit=1, try_limit=4 }").tryLimit == 4)
    }

    @Test func inheritsWhatItDoesNotName() throws {
        let base = PolicyServiceSettings(endpoint: .unix("/ignored"), timeout: 7, tryLimit: 1,
                                         defaultAction: "DEFER_IF_PERMIT Service unavailable")
        let s = try parse("{ inet:127.0.0.1:10023, try_limit=5 }", inheriting: base)
        #expect(s.endpoint == local)
        #expect(s.timeout == 7 && s.tryLimit == 5 && s.defaultAction == "DEFER_IF_PERMIT Service unavailable")
        #expect(try parse("inet:127.0.0.1:10023", inheriting: base).timeout == 7)
    }

    @Test func perServiceErrors() {
        #expect(error("{ inet:127.0.0.1:10023, timeout=10s")!.contains("no '}' at the end"))
        #expect(error("{ }")!.contains("no endpoint"))
        #expect(error("{ {timeout=1s} inet:127.0.0.1:10023 }")!.contains("the endpoint must come first"))
        #expect(error("{ inet:127.0.0.1:10023, { timeout=1s }} }")!.contains("a '}' without its '{'"))
        #expect(error("{ inet:127.0.0.1:10023, { timeout=1s }")!.contains("a '{' without its '}'"))
        #expect(error("{ inet:127.0.0.1:10023, default_action=451 4.3.5 busy }")!
            .contains("'4.3.5' is not name=value (a value with spaces or commas goes in braces"))
        #expect(error("{ inet:127.0.0.1:10023, smtpd_policy_service_timeout=1s }")!.contains("is unknown (known: timeout,"))
        #expect(error("{ inet:127.0.0.1:10023, timeout=0 }")!.contains("expected more than 0s and at most 3600s"))
        #expect(error("{ inet:127.0.0.1:10023, timeout=2h }")!.contains("at most 3600s"))
        #expect(error("{ inet:127.0.0.1:10023, timeout=10x }")!.contains("the unit is s, m, h, d or w"))
        #expect(error("{ inet:127.0.0.1:10023, timeout=s }")!.contains("expected a time"))
        #expect(error("{ inet:127.0.0.1:10023, timeout=-1s }")!.contains("expected a time"))
        #expect(error("{ inet:127.0.0.1:10023, try_limit=0 }")!.contains("expected a whole number from 1 to 100"))
        #expect(error("{ inet:127.0.0.1:10023, try_limit=1000 }")!.contains("from 1 to 100"))
        #expect(error("{ inet:127.0.0.1:10023, request_limit=-1 }")!.contains("from 0 to"))
        #expect(error("{ inet:127.0.0.1:10023, default_action= }")!.contains("an action is needed"))
        #expect(error("{ inet:127.0.0.1:10023, {policy_context=\u{7}} }")!.contains("without control characters"))
        #expect(error("{ inet:localhost:10023, timeout=1s }")!.contains("not a host name"))
    }

    @Test func descriptionReadsBack() throws {
        let s = PolicyServiceSettings(endpoint: .inet(IPAddress("::1")!, 10023), timeout: 2.5, maxIdle: 60, tryLimit: 3,
                                      retryDelay: 0, requestLimit: 7, defaultAction: "451 4.3.5 Try later",
                                      policyContext: "inbound")
        #expect(s.description == "{ inet:[::1]:10023, timeout=2.5s, max_idle=60s, max_ttl=1000s, try_limit=3, retry_delay=0s, "
            + "request_limit=7, { default_action = 451 4.3.5 Try later }, { policy_context = inbound } }")
        #expect(try parse(s.description) == s)
    }
}
