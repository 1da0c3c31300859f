import Testing
@testable import SMTPGateCore

@Suite struct ForwardRinetdImportTests {
    func refusal(_ text: String) -> ConfigError? {
        do { _ = try RinetdImport.translate(text, file: "/etc/rinetd.conf"); return nil } catch { return error }
    }

    func refused(_ line: String, before: String = "") -> String? {
        refusal(before + line + "\n").map(\.description)
    }

    @Test func realisticFile() throws {
        let conf = """
        #
        # rinetd configuration of the old gateway
        #
        allow 192.168.1.*
        allow 10.0.0.0/8
        deny 192.168.1.5   # the printer

        # web
        0.0.0.0 80 192.168.1.2 8080
        allow 192.168.1.?
        deny 192.168.1.9

        [::] 443/tcp [fd77::10] 443/tcp [timeout=1200, src=fd77::1]
        127.0.0.1	4000	127.0.0.1	3000[src=127.0.0.1]   # tunnel
        # only the office
        allow *

        logfile /var/log/rinetd.log
        pidlogfile "/run/rinetd.pid"
        logcommon
        """
        let out = try RinetdImport.translate(conf, file: "/etc/rinetd.conf")
        #expect(out == """
        # SMTPGate configuration translated from the rinetd configuration /etc/rinetd.conf.
        # Each [forward rinetd-N] section is the forwarding rule on line N of that file.

        #
        # rinetd configuration of the old gateway
        #
        allow 192.168.1.*
        allow 10.0.0.0/8
        # the printer
        deny 192.168.1.5
        # rinetd's logfile /var/log/rinetd.log: to log there, run smtpgate run --log-file /var/log/rinetd.log
        pidfile /run/rinetd.pid
        # rinetd's logcommon (web server log format) has no equivalent: SMTPGate writes one logfmt line per connection with client, listener, destination, bytes each way, duration and result

        # web
        [forward rinetd-9]
        bind_address 0.0.0.0
        port 80
        mode fixed
        fixed_server 192.168.1.2
        fixed_server_port 8080
        allow 192.168.1.?
        deny 192.168.1.9

        [forward rinetd-13]
        bind_address ::
        port 443
        mode fixed
        fixed_server fd77::10
        fixed_server_port 443
        # rinetd 0.73 applied [timeout=1200] to UDP forwards only; here it closes this TCP forward after 1200 idle seconds
        timeout_idle 1200
        outgoing_addr fd77::1

        # tunnel
        [forward rinetd-14]
        bind_address 127.0.0.1
        port 4000
        mode fixed
        fixed_server 127.0.0.1
        fixed_server_port 3000
        outgoing_addr 127.0.0.1
        # only the office
        allow *
        # warning: forward rinetd-14: allow * admits only what the global allow rules admit (192.168.1.*, 10.0.0.0/8): the global rules are checked first; add the addresses to the global allow list or drop it

        """)
    }

    @Test func firstRuleBugOfRinetd073IsNamed() throws {
        let conf = "0.0.0.0 25 10.0.0.25 25\nallow 10.1.*\ndeny 10.1.2.3\n0.0.0.0 26 10.0.0.25 26\nallow 10.2.*\n"
        #expect(try RinetdImport.translate(conf, file: "r.conf") == """
        # SMTPGate configuration translated from the rinetd configuration r.conf.
        # Each [forward rinetd-N] section is the forwarding rule on line N of that file.

        [forward rinetd-1]
        bind_address 0.0.0.0
        port 25
        mode fixed
        fixed_server 10.0.0.25
        fixed_server_port 25
        allow 10.1.*
        deny 10.1.2.3
        # note: rinetd 0.73 skipped the first allow/deny rule of this forward (a bug fixed after 0.73); SMTPGate applies every rule

        [forward rinetd-4]
        bind_address 0.0.0.0
        port 26
        mode fixed
        fixed_server 10.0.0.25
        fixed_server_port 26
        allow 10.2.*

        """)
    }

    @Test func smallForms() throws {
        // "0" is rinetd's 0.0.0.0, CRLF line ends, [timeout=0], a denied-everything forward, no trailing newline.
        let conf = "0 8025 ::1 25 [timeout=0]\r\ndeny *\r\n# end"
        #expect(try RinetdImport.translate(conf, file: "my\nfile") == """
        # SMTPGate configuration translated from the rinetd configuration my\\x0afile.
        # Each [forward rinetd-N] section is the forwarding rule on line N of that file.

        [forward rinetd-1]
        bind_address 0.0.0.0
        port 8025
        mode fixed
        fixed_server ::1
        fixed_server_port 25
        # [timeout=0] meant rinetd's default UDP timeout: not carried over
        deny *
        # end
        # warning: forward rinetd-1: deny * refuses every client: nothing is admitted

        """)
        #expect(try RinetdImport.translate("", file: "empty") == """
        # SMTPGate configuration translated from the rinetd configuration empty.
        # Each [forward rinetd-N] section is the forwarding rule on line N of that file.

        """)
        #expect(try RinetdImport.translate("logfile \"/var/log/my rinetd.log\"\n", file: "f").contains(
            "# rinetd's logfile /var/log/my rinetd.log: to log there, run smtpgate run --log-file '/var/log/my rinetd.log'\n"))
    }

    @Test func refusalsNameTheLineAndWhatToDo() {
        let f = "/etc/rinetd.conf"
        let table: [(String, String)] = [
            ("0.0.0.0 80 www.example.com 80", "\(f):1: connect address 'www.example.com' is a host name; resolve it and write the address: SMTPGate does not resolve names in forwards"),
            ("gateway.lan 80 10.0.0.1 80", "\(f):1: bind address 'gateway.lan' is a host name; resolve it and write the address: SMTPGate does not resolve names in forwards"),
            ("0.0.0.0 80 10.0.0.300 80", "\(f):1: connect address '10.0.0.300' is not a valid IPv4 or IPv6 address"),
            ("0.0.0.0 53/udp 10.0.0.53 53/udp", "\(f):1: bind port '53/udp' is UDP: SMTPGate forwards TCP only; keep rinetd for UDP forwards or drop the rule"),
            ("0.0.0.0 53 10.0.0.53 53/udp", "\(f):1: connect port '53/udp' is UDP: SMTPGate forwards TCP only; keep rinetd for UDP forwards or drop the rule"),
            ("0.0.0.0 http 10.0.0.1 80", "\(f):1: bind port 'http' is a service name; write the port number (see /etc/services): SMTPGate does not look up service names"),
            ("0.0.0.0 80 10.0.0.1 65536", "\(f):1: connect port '65536' is not a port number from 1 to 65535"),
            ("0.0.0.0 80/sctp 10.0.0.1 80", "\(f):1: bind port '80/sctp': a port ends in /tcp, /udp or nothing"),
            ("0.0.0.0 80 10.0.0.1 80 [keepalive=1]", "\(f):1: unknown option 'keepalive' in '[keepalive=1]': rinetd 0.73 knows only timeout=SECONDS and src=ADDRESS"),
            ("0.0.0.0 80 10.0.0.1 80 [timeout=soon]", "\(f):1: timeout=soon: expected whole seconds from 0 to 604800"),
            ("0.0.0.0 80 10.0.0.1 80 [timeout=1,timeout=2]", "\(f):1: option timeout is given twice in '[timeout=1,timeout=2]': keep one"),
            ("0.0.0.0 80 10.0.0.1 80 [src=proxy.lan]", "\(f):1: src address 'proxy.lan' is a host name; resolve it and write the address: SMTPGate does not resolve names in forwards"),
            ("0.0.0.0 80 10.0.0.1 80 [src=fd77::1]", "\(f):1: src address fd77::1 and connect address 10.0.0.1 are of different address families: drop src= or write an address of the connect address's family"),
            ("0.0.0.0 80 10.0.0.1 80 [timeout=5", "\(f):1: options are written [timeout=SECONDS,src=ADDRESS] after the connect port, got '[timeout=5'"),
            ("0.0.0.0 80 10.0.0.1 80 extra", "\(f):1: not a rinetd line: \(RinetdImport.expected)"),
            ("0.0.0.0 80 10.0.0.1", "\(f):1: not a rinetd line: \(RinetdImport.expected)"),
            ("include /etc/rinetd.d/*.conf", "\(f):1: not a rinetd line: \(RinetdImport.expected)"),
            ("allow", "\(f):1: allow needs exactly one pattern"),
            ("deny 10.0.0.1 10.0.0.2", "\(f):1: deny needs exactly one pattern"),
            ("allow office.example.com", "\(f):1: allow: an allow/deny pattern may hold only hex digits, '.', ':', '[', ']', '*' and '?', or be a CIDR prefix such as 10.0.0.0/8; 'office.example.com' has 'o' (patterns match the client's address, not its name: write the address)"),
            ("logcommon yes", "\(f):1: logcommon takes no value"),
            ("logfile", "\(f):1: logfile needs a file name"),
            ("logfile /var/log/a b", "\(f):1: logfile: a file name with spaces must be in double quotes"),
            ("pidlogfile \"/run/x", "\(f):1: pidlogfile: a quoted file name is written \"PATH\", got '\"/run/x'"),
            ("0.0.0.0 80 10.0.0.1 80\0", "\(f):1: line contains a NUL byte"),
        ]
        for (line, expected) in table {
            #expect(refused(line) == expected, "\(line)")
        }
        #expect(refused("pidlogfile /run/b.pid", before: "# pid\npidlogfile /run/a.pid\n") == "\(f):3: pidlogfile is already given on line 2: keep one")
        #expect(refused("0.0.0.0 80 mail 25", before: "allow 10.*\n\n") == "\(f):3: connect address 'mail' is a host name; resolve it and write the address: SMTPGate does not resolve names in forwards")
    }

    @Test func bounds() {
        let f = "/etc/rinetd.conf"
        #expect(refusal(String(repeating: "#", count: (1 << 20) + 1))?.description == "\(f): file is larger than 1048576 bytes: a rinetd.conf is a few kilobytes, is this the right file?")
        #expect(refused(String(repeating: "#", count: 8193), before: "\n")  == "\(f):2: line is longer than 8192 bytes")
        #expect(refused(String(repeating: "#", count: 8192)) == nil)
        let many = String(repeating: "allow 10.*\n", count: 10_000)
        #expect(refused("deny 10.0.0.1", before: many) == "\(f):10001: more than 10000 rules: SMTPGate imports at most 10000")
        #expect(refusal(many) == nil)
    }
}
