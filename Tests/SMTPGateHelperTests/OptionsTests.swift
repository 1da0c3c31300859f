#if canImport(Glibc)
import Glibc
#endif
import NIOCore
import Testing
import SMTPGateCore
@testable import SMTPGateHelper

@Suite struct OptionsTests {
    @Test func listenAddresses() throws {
        #expect(try HelperOptions.listenAddress("10.77.2.1") == SocketAddress(ipAddress: "10.77.2.1", port: 114))
        #expect(try HelperOptions.listenAddress("10.77.2.1:1114") == SocketAddress(ipAddress: "10.77.2.1", port: 1114))
        #expect(try HelperOptions.listenAddress("fd77:2::1") == SocketAddress(ipAddress: "fd77:2::1", port: 114))
        #expect(try HelperOptions.listenAddress("[fd77:2::1]") == SocketAddress(ipAddress: "fd77:2::1", port: 114))
        #expect(try HelperOptions.listenAddress("[fd77:2::1]:99") == SocketAddress(ipAddress: "fd77:2::1", port: 99))
        #expect(try HelperOptions.listenAddress("[::]:114") == SocketAddress(ipAddress: "::", port: 114))
        #expect(try HelperOptions.listenAddress("0.0.0.0") == SocketAddress(ipAddress: "0.0.0.0", port: 114))
    }

    @Test(arguments: [
        "", ":114", "10.77.2.1:", "10.77.2.1:0", "10.77.2.1:65536", "10.77.2.1:-1", "10.77.2.1:1e3", "10.77.2.1: 114",
        "router.example:114", "localhost", "[10.77.2.1]:114", "[fd77::1", "[fd77::1]114", "[fd77::1]:", "[]:114",
        "fd77::1:99999", "10.77.2.1:114:114", "10.77.2.1\u{0}:114", "[fd77::1]:１１４",
    ])
    func badListenAddresses(_ text: String) {
        #expect(throws: HelperError.self) { try HelperOptions.listenAddress(text) }
    }

    @Test func legacySecretAndWindow() throws {
        #expect(try HelperOptions.legacySecret("0") == 0)
        #expect(try HelperOptions.legacySecret("4294967295") == UInt32.max)
        for bad in ["", "-1", "4294967296", "0x10", " 7", "7 ", "99999999999999999999"] {
            #expect(throws: HelperError.self) { try HelperOptions.legacySecret(bad) }
        }
        #expect(try HelperOptions.window(30) == 30)
        #expect(throws: HelperError.self) { try HelperOptions.window(0) }
        #expect(throws: HelperError.self) { try HelperOptions.window(3601) }
    }

    @Test func replayCacheBounds() throws {
        #expect(try HelperOptions.replayCache(1024) == 1024)
        #expect(try HelperOptions.replayCache(1 << 24) == 1 << 24)
        for bad in [0, 1023, (1 << 24) + 1, -5] {
            #expect(throws: HelperError.self) { try HelperOptions.replayCache(bad) }
        }
        let c = try HelperOptions.configuration(listen: ["127.0.0.1"], allow: ["127.0.0.1"], keyFile: nil,
                                                legacySecret: "0", replayCache: 4096)
        #expect(c.policy.replayCapacity == 4096)
    }

    @Test func allowErrorsNameTheOption() {
        do {
            _ = try HelperOptions.allow("10.0.0.1/8")
            Issue.record("accepted")
        } catch {
            #expect(error.description.hasPrefix("--allow"))
        }
    }

    @Test func configurationNeedsAVersion() throws {
        do {
            _ = try HelperOptions.configuration(listen: ["127.0.0.1"], allow: ["127.0.0.1"], keyFile: nil, legacySecret: nil)
            Issue.record("accepted")
        } catch {
            #expect(error.description.contains("--key-file"))
            #expect(error.description.contains("--legacy-secret"))
        }
        #expect(throws: HelperError.self) {
            try HelperOptions.configuration(listen: [], allow: ["127.0.0.1"], keyFile: nil, legacySecret: "0")
        }
        #expect(throws: HelperError.self) {
            try HelperOptions.configuration(listen: ["127.0.0.1"], allow: [], keyFile: nil, legacySecret: "0")
        }
        #expect(throws: HelperError.self) {
            try HelperOptions.configuration(listen: ["127.0.0.1", "127.0.0.1:114"], allow: ["::1"], keyFile: nil, legacySecret: "0")
        }
        let c = try HelperOptions.configuration(listen: ["127.0.0.1:1114", "[::1]"], allow: ["127.0.0.0/8", "::1"],
                                                keyFile: nil, legacySecret: "7", window: 10)
        #expect(c.listen.count == 2)
        #expect(c.policy.legacySecret == 7)
        #expect(c.policy.key == nil)
        #expect(c.policy.window == 10)
        #expect(c.policy.allow.description == "127.0.0.0/8,::1/128")
    }

    // MARK: key file

    func withFile(_ contents: [UInt8], mode: mode_t, _ body: (String) throws -> Void) rethrows {
        var template = Array("/tmp/smtpgate-helper-key-XXXXXX".utf8CString)
        let fd = mkstemp(&template)
        precondition(fd >= 0)
        let path = String(cString: template)
        defer { unlink(path) }
        _ = contents.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        fchmod(fd, mode)
        close(fd)
        try body(path)
    }

    func keyError(_ path: String) -> String? {
        do {
            _ = try HelperOptions.keyFile(path)
            return nil
        } catch {
            return error.description
        }
    }

    @Test func goodKeyFiles() throws {
        try withFile(Array("0123456789abcdef".utf8), mode: 0o600) { #expect(keyError($0) == nil) }
        try withFile(Array("0123456789abcdef\n".utf8), mode: 0o400) { #expect(keyError($0) == nil) }
        try withFile([UInt8](repeating: 0xff, count: 64), mode: 0o600) { #expect(keyError($0) == nil) }
    }

    @Test func missingKeyFile() {
        #expect(keyError("/nonexistent/smtpgate.key")?.contains("cannot open") == true)
        #expect(keyError("/tmp")?.contains("not a regular file") == true)
    }

    @Test func shortKeyFile() {
        withFile(Array("0123456789abcde\n".utf8), mode: 0o600) {
            #expect(keyError($0)?.contains("too short (15 bytes)") == true)
        }
        withFile([], mode: 0o600) { #expect(keyError($0)?.contains("too short (0 bytes)") == true) }
    }

    @Test(arguments: [0o644, 0o640, 0o604, 0o660, 0o620, 0o602, 0o610])
    func openKeyFile(_ mode: Int) {
        withFile(Array("0123456789abcdef0123".utf8), mode: mode_t(mode)) {
            let e = keyError($0)
            #expect(e?.contains("group or other") == true)
            #expect(e?.contains("chmod 600") == true)
        }
    }
}
