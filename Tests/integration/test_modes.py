"""Destination modes testable on loopback: the loop check (getsockname), netfilter without a redirect,
the PROXY v2 header toward the fixed server, and the XCLIENT exchange with a scripted server.
Redirected, TPROXY and split-mode sessions run in the NAT lab (Tests/e2e)."""
import socket
import struct
import threading

from conftest import HOST, PROXY_NAME, close_quietly

PN = PROXY_NAME
PP2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"


def test_direct_connection_in_getsockname_mode_is_a_loop(proxy, mta):
    p = proxy(mta.port, mode="getsockname", fixed_server=None)
    c = p.connect()
    reply = c.read_reply()
    assert reply.text == f"554 5.4.6 {PN}: routing loop: {HOST}:{p.port} is this proxy"
    c.wait_closed()
    close = p.wait_event("close")[0]
    assert (close.get("closed_by"), close.get("reason")) == ("proxy", "loop")
    assert mta.conns == []


def test_netfilter_mode_without_a_redirect_forwards_nothing(proxy, mta):
    p = proxy(mta.port, mode="netfilter", fixed_server=None)
    c = p.connect()
    reply = c.read_reply()
    # Without a NAT entry the kernel has no original destination (or names the proxy itself).
    assert reply.text.startswith((f"421 4.4.3 {PN}: cannot find the destination: ",
                                  f"554 5.4.6 {PN}: routing loop: ")), reply.text
    c.wait_closed()
    assert p.wait_event("close")[0].get("reason") in ("lookup_failed", "loop")
    assert mta.conns == []


class _RawServer:
    """Accepts one connection and runs `script(conn, file)` on it in a thread."""

    def __init__(self, script):
        self.srv = socket.socket()
        self.srv.bind((HOST, 0))
        self.srv.listen(4)
        self.port = self.srv.getsockname()[1]
        self.received = bytearray()
        self.error = None
        self.done = threading.Event()
        self.script = script
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        try:
            conn, _ = self.srv.accept()
            conn.settimeout(10)
            try:
                self.script(conn, self)
            finally:
                close_quietly(conn)
        except Exception as e:   # reported by the test through .error
            self.error = e
        finally:
            self.done.set()
            close_quietly(self.srv)

    def read_exact(self, conn, n):
        data = b""
        while len(data) < n:
            chunk = conn.recv(n - len(data))
            if not chunk:
                raise EOFError(f"closed after {len(data)} of {n} bytes")
            data += chunk
        self.received += data
        return data

    def read_line(self, conn):
        line = b""
        while not line.endswith(b"\n"):
            chunk = conn.recv(1)
            if not chunk:
                raise EOFError("closed mid-line")
            line += chunk
        self.received += line
        return line


def test_proxy_protocol_v2_header_precedes_the_dialogue(proxy):
    seen = {}

    def script(conn, srv):
        seen["header"] = srv.read_exact(conn, 16 + 12)
        conn.sendall(b"220 pp.test ESMTP\r\n")
        seen["first"] = srv.read_line(conn)
        conn.sendall(b"221 bye\r\n")

    srv = _RawServer(script)
    p = proxy(srv.port, proxy_protocol=True)
    c = p.connect()
    client_port = c.sock.getsockname()[1]
    assert c.greeting().text == "220 pp.test ESMTP"
    assert c.cmd("QUIT").code == 221
    assert srv.done.wait(10) and srv.error is None, srv.error
    h = seen["header"]
    assert h[:12] == PP2_SIGNATURE
    assert h[12:16] == b"\x21\x11\x00\x0c"                 # v2 PROXY, TCP over IPv4, 12 address bytes
    assert h[16:20] == socket.inet_aton(HOST)               # source: the real client
    assert h[20:24] == socket.inet_aton(HOST)               # destination: where the client connected
    assert struct.unpack("!HH", h[24:28]) == (client_port, p.port)
    assert seen["first"] == b"QUIT\r\n"


def _xclient_server(ehlo_extensions, xclient_reply=b"220 mta.test fresh greeting\r\n"):
    seen = {}

    def script(conn, srv):
        conn.sendall(b"220 mta.test ESMTP\r\n")
        seen["ehlo"] = srv.read_line(conn)
        conn.sendall(b"250-mta.test\r\n" + b"".join(b"250-" + e + b"\r\n" for e in ehlo_extensions[:-1])
                     + b"250 " + ehlo_extensions[-1] + b"\r\n")
        line = srv.read_line(conn)
        seen["xclient"] = line
        if not line.startswith(b"XCLIENT"):
            return
        conn.sendall(xclient_reply)
        if not xclient_reply.startswith(b"220"):
            return
        seen["client_first"] = srv.read_line(conn)
        conn.sendall(b"250 mta.test hello\r\n")
        seen["client_second"] = srv.read_line(conn)
        conn.sendall(b"221 bye\r\n")

    return _RawServer(script), seen


def test_fixed_xclient_tells_the_mta_the_real_client(proxy):
    srv, seen = _xclient_server([b"PIPELINING", b"XCLIENT NAME ADDR PORT PROTO HELO LOGIN"])
    p = proxy(srv.port, mode="fixed+xclient")
    c = p.connect()
    client_port = c.sock.getsockname()[1]
    assert c.greeting().text == "220 mta.test fresh greeting"
    assert c.cmd("EHLO customer.test").text == "250 mta.test hello"
    assert c.cmd("QUIT").code == 221
    assert srv.done.wait(10) and srv.error is None, srv.error
    assert seen["ehlo"] == f"EHLO {PN}\r\n".encode()
    assert seen["xclient"] == f"XCLIENT ADDR={HOST} PORT={client_port}\r\n".encode()
    assert seen["client_first"] == b"EHLO customer.test\r\n"
    assert seen["client_second"] == b"QUIT\r\n"


def test_fixed_xclient_sends_only_attributes_the_mta_offers(proxy):
    srv, seen = _xclient_server([b"XCLIENT ADDR NAME"])
    p = proxy(srv.port, mode="fixed+xclient")
    c = p.connect()
    assert c.greeting().code == 220
    assert c.cmd("EHLO customer.test").code == 250
    assert c.cmd("QUIT").code == 221
    assert srv.done.wait(10) and srv.error is None, srv.error
    assert seen["xclient"] == f"XCLIENT ADDR={HOST}\r\n".encode()


def test_mta_without_xclient_gets_no_session(proxy):
    srv, seen = _xclient_server([b"PIPELINING", b"8BITMIME"])
    p = proxy(srv.port, mode="fixed+xclient")
    c = p.connect()
    assert c.read_reply().text == f"421 4.4.1 {PN}: cannot connect to {HOST}:{srv.port}: destination does not offer XCLIENT"
    c.wait_closed()
    assert p.wait_event("connect_failed")[0].get("error") == "destination does not offer XCLIENT"
    assert srv.done.wait(10)
    assert "client_first" not in seen


def test_mta_refusing_xclient_gets_no_session(proxy):
    srv, seen = _xclient_server([b"XCLIENT ADDR PORT"], xclient_reply=b"550 5.7.0 not authorized\r\n")
    p = proxy(srv.port, mode="fixed+xclient")
    c = p.connect()
    assert c.read_reply().text == (f"421 4.4.1 {PN}: cannot connect to {HOST}:{srv.port}: "
                                   "destination refused XCLIENT with 550")
    c.wait_closed()
    assert "client_first" not in seen
