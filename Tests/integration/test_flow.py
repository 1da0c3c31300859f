"""Connect timeouts and backpressure: a destination that never accepts, and one that stops reading."""
import socket
import threading
import time

from conftest import HOST, PROXY_NAME, close_quietly, wait_until

PN = PROXY_NAME


def _full_listener():
    """A listening socket whose accept queue is full, so a further SYN is dropped and connect() hangs."""
    srv = socket.socket()
    srv.bind((HOST, 0))
    srv.listen(0)
    fillers = []
    for _ in range(3):
        c = socket.socket()
        c.setblocking(False)
        c.connect_ex(srv.getsockname())
        fillers.append(c)
    time.sleep(0.2)
    return srv, fillers


def test_connect_timeout_gives_421_timed_out(proxy):
    srv, fillers = _full_listener()
    try:
        port = srv.getsockname()[1]
        p = proxy(port, timeout_connect=1)
        c = p.connect()
        started = time.monotonic()
        reply = c.read_reply(timeout=5)
        waited = time.monotonic() - started
        assert reply.text == f"421 4.4.1 {PN}: cannot connect to {HOST}:{port}: timed out"
        assert 0.8 <= waited < 4, waited
        c.wait_closed()
        failed = p.wait_event("connect_failed")[0]
        assert failed.get("error") == "timed out"
        close = p.wait_event("close")[0]
        assert (close.get("closed_by"), close.get("reason")) == ("proxy", "connect_failed")
    finally:
        for s in fillers:
            close_quietly(s)
        close_quietly(srv)


class _StallingMTA:
    """Answers the dialogue, then reads nothing of the DATA body until released."""

    def __init__(self):
        self.srv = socket.socket()
        self.srv.bind((HOST, 0))
        self.srv.listen(4)
        self.port = self.srv.getsockname()[1]
        self.release = threading.Event()
        self.body_bytes = 0
        self.done = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        conn, _ = self.srv.accept()
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        conn.settimeout(30)
        f = conn.makefile("rb")
        conn.sendall(b"220 stall.test ESMTP\r\n")
        for reply in (b"250 stall.test\r\n", b"250 2.1.0 ok\r\n", b"250 2.1.5 ok\r\n", b"354 go on\r\n"):
            f.readline()
            conn.sendall(reply)
        self.release.wait(30)
        tail = b""
        while not tail.endswith(b"\r\n.\r\n"):
            chunk = f.read1(1 << 16)
            if not chunk:
                break
            self.body_bytes += len(chunk)
            tail = (tail + chunk)[-5:]
        conn.sendall(b"250 2.0.0 taken\r\n")
        self.done.set()
        if f.readline().upper().startswith(b"QUIT"):
            conn.sendall(b"221 bye\r\n")
        close_quietly(conn)


def _rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_stalled_mta_does_not_make_the_proxy_buffer_the_message(proxy):
    mta = _StallingMTA()
    p = proxy(mta.port, timeout_idle=20)
    c = p.connect()
    assert c.greeting().code == 220
    for cmd in ("EHLO big.test", "MAIL FROM:<a@x.test>", "RCPT TO:<b@x.test>"):
        assert c.cmd(cmd).code == 250
    assert c.cmd("DATA").code == 354
    before = _rss_kib(p.pid)
    line = b"x" * 998 + b"\r\n"
    body = memoryview(line * 40_000)
    total = len(body)
    sent = 0
    c.sock.settimeout(0.5)
    deadline = time.monotonic() + 10
    while sent < total and time.monotonic() < deadline:
        try:
            sent += c.sock.send(body[sent:sent + 65536])
        except socket.timeout:
            break
    # The client is blocked: everything it managed to send sits in kernel buffers and at most the
    # proxy's write-buffer high-water mark, nowhere near the 40 MB offered.
    assert sent < 16 * 1024 * 1024, sent
    grown = _rss_kib(p.pid) - before
    assert grown < 8 * 1024, f"proxy RSS grew by {grown} KiB while the MTA stalled"
    mta.release.set()
    c.sock.settimeout(10)
    c.sock.sendall(body[sent:])
    c.send(b".\r\n")
    assert c.read_reply(timeout=20).code == 250
    assert mta.done.wait(10)
    assert mta.body_bytes == total + 3
    assert c.cmd("QUIT").code == 221
    txn = p.wait_event("transaction")[0]
    assert txn.get("size") == str(total)
