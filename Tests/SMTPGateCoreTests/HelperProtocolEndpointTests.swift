import Testing
@testable import SMTPGateCore

/// An endpoint from an address literal the test knows is valid.
func ep(_ literal: String, _ port: UInt16) -> HelperEndpoint {
    HelperEndpoint(IPAddress(literal)!, port: port)
}

@Suite("Helper protocol: endpoints")
struct HelperProtocolEndpointTests {
    @Test func ipv4FromAndToText() {
        let e = ep("10.77.1.2", 51000)
        #expect(e.addressBytes == [10, 77, 1, 2])
        #expect(e.family == .v4)
        #expect(e.address == IPAddress("10.77.1.2")!)
        #expect(e.description == "10.77.1.2:51000")
    }

    @Test func ipv6FromAndToText() {
        let e = ep("fd77:1::2", 25)
        #expect(e.addressBytes == [0xfd, 0x77, 0, 1] + [UInt8](repeating: 0, count: 11) + [2])
        #expect(e.family == .v6)
        #expect(e.address.text == "fd77:1::2")
        #expect(e.description == "[fd77:1::2]:25")
        #expect(ep("[FD77:0001:0:0::0002]", 1).address.text == "fd77:1::2")
    }

    @Test func rawBytesRoundTripThroughText() {
        let raw: [UInt8] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0x01]
        let e = HelperEndpoint(addressBytes: raw, port: 65535)!
        #expect(e.address.text == "2001:db8::ff01")
        #expect(HelperEndpoint(e.address, port: e.port) == e)
        #expect(HelperEndpoint(addressBytes: [255, 255, 255, 255], port: 0)!.address.text == "255.255.255.255")
    }

    @Test func onlyFourOrSixteenAddressBytes() {
        for count in [0, 1, 3, 5, 8, 15, 17, 32] {
            #expect(HelperEndpoint(addressBytes: [UInt8](repeating: 1, count: count), port: 1) == nil)
        }
    }

    @Test func everyReasonIsDistinctAndStable() {
        let all: [HelperPacketError] = [.short, .long, .badMagic, .badVersion, .badFlags, .badReserved, .badFamily,
                                        .badAddress, .badIdent, .badMAC, .stale, .replay, .replayCacheFull]
        #expect(all.map(\.reason) == ["short", "long", "bad_magic", "bad_version", "bad_flags", "bad_reserved",
                                      "bad_family", "bad_address", "bad_ident", "bad_mac", "stale", "replay",
                                      "replay_cache_full"])
        #expect(HelperPacketError.badMAC.description == "bad_mac")
    }
}
