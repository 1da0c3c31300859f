import Testing
@testable import SMTPGateCore

@Suite struct ForwardPortRangeTests {
    func refusal(_ s: String) -> String? {
        do { _ = try PortRange(parsing: s); return nil } catch { return error.message }
    }

    @Test func parsesSingleAndRange() throws {
        let one = try PortRange(parsing: "443")
        #expect(one.lower == 443 && one.upper == 443 && one.count == 1)
        #expect(one.description == "443")
        let range = try PortRange(parsing: "10001-10003")
        #expect(range.lower == 10001 && range.upper == 10003 && range.count == 3)
        #expect(range.description == "10001-10003")
        #expect(try PortRange(parsing: "1").lower == 1)
        #expect(try PortRange(parsing: "65535").upper == 65535)
        #expect(try PortRange(parsing: "65280-65535").count == 256)
        #expect(try PortRange(parsing: "0443").description == "443")
    }

    @Test func refusals() {
        let expected = "expected a port (1 to 65535) or a range such as 10001-10003, got"
        for bad in ["", "0", "65536", "+443", "-443", "443-", " 443", "443 ", "1-2-3", "smtp", "1e3", "99999999999999999999", "٤٤٣"] {
            #expect(refusal(bad)?.hasPrefix(expected) == true, "\(bad)")
        }
        #expect(refusal("smtp") == "\(expected) 'smtp'")
        #expect(refusal("443 ") == "\(expected) '443 '")
        #expect(refusal("10003-10001") == "port range '10003-10001' runs backwards: write the lower port first")
        #expect(refusal("1000-1256") == "port range '1000-1256' has 257 ports; a forward listens on at most 256")
        let hostile = String(repeating: "9", count: 10_000)
        #expect(refusal(hostile) == "\(expected) '\(String(repeating: "9", count: 40))...'")
    }

    @Test func mapping() throws {
        let listen = try PortRange(parsing: "10001-10003")
        let target = try PortRange(parsing: "20001-20003")
        #expect(listen.mapped(10001, onto: target) == 20001)
        #expect(listen.mapped(10003, onto: target) == 20003)
        #expect(listen.mapped(10000, onto: target) == nil)
        #expect(listen.mapped(10004, onto: target) == nil)
        #expect(listen.mapped(10001, onto: try PortRange(parsing: "20001-20002")) == nil)
        let single = try PortRange(parsing: "443")
        #expect(single.mapped(443, onto: try PortRange(parsing: "8443")) == 8443)
        #expect(PortRange(lower: 5, upper: 4) == nil)
        #expect(PortRange(lower: 1, upper: 256)?.count == 256)
    }
}
