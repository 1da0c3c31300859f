import NIOCore
import SMTPGateCore
import Testing
@testable import SMTPGateProxy

@Suite("Socket addresses as text and bytes without inet_ntop")
struct SocketAddressTextTests {
    @Test(arguments: [
        ("0.0.0.0", "0.0.0.0"), ("255.255.255.255", "255.255.255.255"), ("10.77.0.1", "10.77.0.1"),
        ("192.0.2.100", "192.0.2.100"), ("1.20.3.199", "1.20.3.199"), ("::ffff:10.77.1.2", "10.77.1.2"),
        ("::ffff:0.0.0.0", "0.0.0.0"), ("::1", "::1"), ("fd77::5", "fd77::5"), ("::", "::"),
        ("::ffff:0:1", "0.0.0.1"), ("2001:db8::ffff:10.1.2.3", "2001:db8::ffff:a01:203"),
    ])
    func textIsWhatInetNtopAndNormalisingMake(literal: String, expected: String) throws {
        let a = try SocketAddress(ipAddress: literal, port: 25)
        #expect(a.normalisedIP == expected)
        #expect(a.normalisedIP == a.ipAddress.map(LocalAddresses.normalised))
        #expect(a.ipBytes == AddressBytes.parse(expected))
        #expect(RelaySession.describe(a) == (expected.contains(":") ? "[\(expected)]:25" : "\(expected):25"))
    }

    @Test func aUnixSocketHasNoIP() throws {
        let a = try SocketAddress(unixDomainSocketPath: "/tmp/x.sock")
        #expect(a.normalisedIP == nil && a.ipBytes == nil)
    }
}
