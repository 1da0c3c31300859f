"""Plain TCP forwards (issue 11's ``[forward NAME]`` sections), end to end on loopback.

* a TLS service (openssl s_server) behind a forward with its own allow list, beside an SMTP listener;
* byte-exact relaying both ways (8 MiB each), half-close in either direction, a port range mapped one
  to one onto backend ports, and the result names of the ``forward`` log line;
* rinetd's allow/deny order (global, then the forward's; deny wins), the office-move trap;
* limits: max_connections, max_per_host, a closed backend, timeout_idle;
* the real rinetd (Debian's 0.73) and ``import-rinetd`` of the same rinetd.conf admitting and refusing
  the same clients.

Second client addresses are 127.0.0.2, 127.0.0.3, ...: Linux routes all of 127/8 on lo, so a client socket
bound to one of them connects from it.
"""
import os
import random
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time

import pytest

from conftest import HOST, IO_TIMEOUT, PROXY_NAME, Client, free_port, port_listening, wait_until
from forwardkit import (Backend, connect, echo_handler, echo_roundtrip, exchange, free_port_range,
                        hold_handler, recv_all, run_cli, sectioned, sha, tagged_echo_handler)

MiB = 1 << 20


def can_bind(addr):
    try:
        with socket.socket() as s:
            s.bind((addr, 0))
        return True
    except OSError:
        return False


needs_127_0_0_x = pytest.mark.skipif(not can_bind("127.0.0.2"), reason="127.0.0.2 cannot be a source address here")


def head(p, extra="", mode=True):
    """The global part.  Without ``mode`` (and with no [listener] section) the file has no SMTP listener:
    a global ``mode`` makes the global options a listener named main."""
    return f"""# written by test_forward_tcp.py
proxy_name {PROXY_NAME}
pidfile {p.pidfile}
control_path {p.control_path}
{"mode fixed" if mode else "# mode is set per forward: no SMTP listener"}
bind_address {HOST}
fixed_server {HOST}
fixed_server_port {p.upstream_port}
timeout_connect 3
timeout_idle 10
shutdown_timeout 3
{extra}
"""


def fwd(name, port, backend_port, extra=""):
    return f"""
[forward {name}]
mode fixed
port {port}
fixed_server_port {backend_port}
{extra}
"""


def start_forwards(proxy, sections, upstream=1, extra_head="", wait_ports=()):
    """A daemon with only [forward] sections; ``sections`` is a list of (name, port, backend_port, extra)."""
    p = proxy(upstream, start=False)
    p.port = sections[0][1] if isinstance(sections[0][1], int) else int(str(sections[0][1]).split("-")[0])
    text = head(p, extra_head, mode=False) + "".join(fwd(*s) for s in sections)
    sectioned(p, text, wait_ports=wait_ports)
    (st,) = p.wait_event("start")
    assert st.get("listeners") == ",".join(s[0] for s in sections), st
    return p


def last_forward(p, client, timeout=5.0):
    (r,) = p.wait_event("forward", timeout, client=client)
    return r


# --------------------------------------------------------------------------
# 2. a TLS service behind a forward, next to an SMTP listener
# --------------------------------------------------------------------------

@pytest.fixture
def tls_server(tmp_path):
    """``openssl s_server -rev`` on 127.0.0.1 (one connection, then it exits), with a throw-away cert."""
    if not shutil.which("openssl"):
        pytest.skip("openssl not installed (scripts/deps.sh installs it)")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=test", "-days", "1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True, timeout=30)
    port = free_port()
    out = open(tmp_path / "s_server.out", "wb")
    proc = subprocess.Popen(["openssl", "s_server", "-accept", f"{HOST}:{port}", "-cert", str(cert), "-key", str(key),
                             "-naccept", "1", "-rev"], stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                            start_new_session=True)
    try:
        wait_until(lambda: proc.poll() is not None or port_listening(port), what="openssl s_server listening")
        assert proc.poll() is None, (tmp_path / "s_server.out").read_text()
        yield port, cert, proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        out.close()


@needs_127_0_0_x
def test_tls_service_through_a_forward_beside_an_smtp_listener(mta, proxy, tls_server):
    tls_port, cert, s_server = tls_server
    p = proxy(mta.port, start=False)
    smtp_port, fport = free_port(), free_port()
    p.port = smtp_port
    sectioned(p, head(p) + f"""
[listener mail]
port {smtp_port}
client_restrictions permit_mynetworks, reject
mynetworks 127.0.0.2/32

[forward tls]
port {fport}
fixed_server_port {tls_port}
allow 127.0.0.1
""", wait_ports=[fport])
    kinds = {r.get("listener"): r.get("kind") for r in p.wait_event("listening", count=2)}
    assert kinds == {"mail": "smtp", "tls": "forward"}

    # 127.0.0.2 is the SMTP listener's client and not the forward's: refused before any handshake
    ctx = ssl.create_default_context(cafile=str(cert))
    ctx.check_hostname = False          # CN=test, no SAN
    raw = connect(fport, source="127.0.0.2")
    with pytest.raises((ssl.SSLError, OSError)):
        ctx.wrap_socket(raw, server_hostname="test")
    raw.close()
    refused = p.wait_event("forward", result="not-allowed")[0]
    assert refused.get("client").startswith("127.0.0.2:") and refused.get("rule") == "forward"
    assert refused.level == "notice"
    assert s_server.poll() is None, "the refused client never reached s_server (-naccept 1 still waits)"

    # 127.0.0.1: the handshake goes through the forward to s_server; its certificate is the one we made
    s = ctx.wrap_socket(connect(fport), server_hostname="test")
    local = "%s:%d" % s.getsockname()[:2]
    der = ssl.PEM_cert_to_DER_cert(cert.read_text())
    assert s.getpeercert(binary_form=True) == der
    rnd = random.Random(11)
    sent = received = 0
    for _ in range(16):                  # 16 batches of 200 lines of 160 hex digits (~0.5 MiB each way)
        lines = [rnd.randbytes(80).hex().encode() for _ in range(200)]
        batch = b"".join(l + b"\n" for l in lines)
        s.sendall(batch)
        sent += len(batch)
        want = b"".join(l[::-1] + b"\n" for l in lines)
        got = bytearray()
        deadline = time.monotonic() + 5
        while len(got) < len(want) and time.monotonic() < deadline:
            d = s.recv(1 << 16)
            if not d:
                break
            got += d
        assert bytes(got) == want        # s_server -rev: every line came back reversed, nothing else
        received += len(got)
    s.sendall(b"CLOSE\n")                # s_server -rev closes on this line
    s.settimeout(5)
    tail = b""
    try:
        while True:
            d = s.recv(1 << 16)
            if not d:
                break
            tail += d
    except (ssl.SSLError, OSError):
        pass
    s.close()
    assert b"CLOSE" not in tail
    fw = last_forward(p, local)
    assert fw.get("listener") == "tls" and fw.get("dest") == f"{HOST}:{tls_port}"
    # TLS records: more bytes than the plaintext each way
    assert int(fw.get("bytes_in")) > sent and int(fw.get("bytes_out")) > received, fw
    assert fw.get("result") in ("done-local-closed", "done-remote-closed"), fw
    assert fw.level == "info"

    # the SMTP listener's policy is its own: 127.0.0.2 relays, 127.0.0.1 is refused at RCPT
    for src, ok in (("127.0.0.2", True), ("127.0.0.1", False)):
        with Client(smtp_port, source=src) as c:
            assert c.greeting().code == 220
            assert c.cmd("EHLO client.test").code == 250
            c.cmd("MAIL FROM:<a@example.org>")
            code = c.cmd("RCPT TO:<b@example.net>").code
            assert (code == 250) == ok, (src, code)
            c.cmd("QUIT")


# --------------------------------------------------------------------------
# 3. byte-exact both ways, half-close, result names, port ranges
# --------------------------------------------------------------------------

def test_8mib_each_way_byte_exact_with_the_client_half_closing_first(proxy):
    answer = random.Random(3).randbytes(8 * MiB)
    seen = {}

    def handler(c, index):
        seen["sha"] = sha(recv_all(c, limit=64 * MiB))     # until the client's EOF (its half-close)
        c.sendall(answer)                                  # then the answer, on the still-open way back

    with Backend(handler) as be:
        fport = free_port()
        p = start_forwards(proxy, [("bulk", fport, be.port, "")])
        payload = os.urandom(8 * MiB)
        got, local = exchange(fport, payload, timeout=20)
        assert len(got) == len(answer) and sha(got) == sha(answer)
        wait_until(lambda: "sha" in seen, what="backend digest")
        assert seen["sha"] == sha(payload)
        fw = last_forward(p, local, timeout=10)
        assert fw.get("bytes_in") == str(len(payload)) and fw.get("bytes_out") == str(len(answer)), fw
        assert fw.get("result") == "done-remote-closed", fw       # the client closed (its write side) first
        assert fw.get("dest") == f"{HOST}:{be.port}" and fw.get("listener") == "bulk"
        assert fw.get("error") is None


def test_8mib_each_way_with_the_destination_half_closing_first(proxy):
    banner = random.Random(5).randbytes(8 * MiB)
    seen = {}

    def handler(c, index):
        c.sendall(banner)
        c.shutdown(socket.SHUT_WR)                       # destination done first ...
        seen["sha"] = sha(recv_all(c, limit=64 * MiB))   # ... and still reads what the client sends after

    with Backend(handler) as be:
        fport = free_port()
        p = start_forwards(proxy, [("bulk", fport, be.port, "")])
        c = connect(fport, timeout=20)
        local = "%s:%d" % c.getsockname()[:2]
        got = recv_all(c, limit=64 * MiB)                # until the destination's EOF arrives through the forward
        assert sha(got) == sha(banner)
        payload = os.urandom(8 * MiB)
        c.sendall(payload)                               # the client->destination way is still open
        c.shutdown(socket.SHUT_WR)
        c.settimeout(5)
        assert recv_all(c) == b""
        c.close()
        wait_until(lambda: "sha" in seen, timeout=10, what="backend digest")
        assert seen["sha"] == sha(payload)
        fw = last_forward(p, local, timeout=10)
        assert fw.get("result") == "done-local-closed", fw
        assert fw.get("bytes_in") == str(len(payload)) and fw.get("bytes_out") == str(len(banner)), fw


def test_destination_closing_gives_done_local_closed_and_client_closing_done_remote_closed(proxy):
    def handler(c, index):
        if index == 0:
            c.sendall(b"hello and goodbye\r\n")          # closes at once (Backend closes after the handler)
        else:
            echo_handler(c, index)

    with Backend(handler, count=2) as be:
        p1, p2 = free_port(), free_port()
        p = start_forwards(proxy, [("closer", p1, be.ports[0], ""), ("echo", p2, be.ports[1], "")], wait_ports=[p2])
        c = connect(p1)
        local1 = "%s:%d" % c.getsockname()[:2]
        c.settimeout(5)
        assert recv_all(c) == b"hello and goodbye\r\n"
        c.close()
        got, local2 = echo_roundtrip(p2, b"ping")
        assert got == b"ping"
        r1, r2 = last_forward(p, local1), last_forward(p, local2)
        assert r1.get("result") == "done-local-closed" and r1.get("bytes_out") == "19" and r1.get("bytes_in") == "0"
        assert r2.get("result") == "done-remote-closed" and r2.get("bytes_in") == "4" and r2.get("bytes_out") == "4"
        assert float(r1.get("duration")) < 5 and r1.get("session") != r2.get("session")


def test_a_port_range_maps_one_to_one_onto_the_backend_range(proxy):
    bbase = free_port_range(3)
    with Backend(tagged_echo_handler, ports=[bbase, bbase + 1, bbase + 2]) as be:
        fbase = free_port_range(3)
        p = proxy(1, start=False)
        p.port = fbase
        sectioned(p, head(p, mode=False) + fwd("range", f"{fbase}-{fbase + 2}", f"{bbase}-{bbase + 2}"),
                  wait_ports=[fbase + 1, fbase + 2])
        (lst,) = p.wait_event("listening")
        assert lst.get("listener") == "range"
        assert lst.get("address") == f"{HOST}:{fbase}-{fbase + 2}" and lst.get("kind") == "forward"
        for i in (2, 0, 1):
            got, local = exchange(fbase + i, f"to {i}".encode())
            assert got == f"backend{i}:to {i}".encode(), (i, got)
            assert last_forward(p, local).get("dest") == f"{HOST}:{bbase + i}"


# --------------------------------------------------------------------------
# 4. allow/deny in rinetd's order
# --------------------------------------------------------------------------

@needs_127_0_0_x
def test_global_and_forward_rules_in_rinetds_order(proxy):
    with Backend(echo_handler) as be:
        pa, pb = free_port(), free_port()
        p = start_forwards(proxy, [
            ("a", pa, be.port, "allow 127.0.0.1\nallow 127.0.0.2\nallow 127.0.0.3\ndeny 127.0.0.2\n"),
            ("b", pb, be.port, "allow 127.0.0.0/30\n"),
        ], extra_head="allow 127.0.0.?\ndeny 127.0.0.3\n", wait_ports=[pb])
        want = {   # (forward port, client): (result, rule, pattern)
            (pa, "127.0.0.1"): ("ok", None, None),
            (pa, "127.0.0.2"): ("denied", "forward", "127.0.0.2"),       # allowed and denied: deny wins
            (pa, "127.0.0.3"): ("denied", "global", "127.0.0.3"),        # the global deny beats the forward's allow
            (pa, "127.0.0.4"): ("not-allowed", "forward", None),         # passes the global allow, no forward allow
            (pa, "127.0.0.10"): ("not-allowed", "global", None),         # ? is one character: outside the global allow
            (pb, "127.0.0.2"): ("ok", None, None),                       # CIDR 127.0.0.0/30
            (pb, "127.0.0.4"): ("not-allowed", "forward", None),
            (pb, "127.0.0.3"): ("denied", "global", "127.0.0.3"),
        }
        for (port, src), (result, rule, pattern) in want.items():
            got, local = echo_roundtrip(port, b"hello", source=src)
            assert got == (b"hello" if result == "ok" else b""), (port, src, got)
            r = last_forward(p, local)
            if result == "ok":
                assert r.get("result") == "done-remote-closed" and r.level == "info", r
                continue
            assert (r.get("result"), r.get("rule")) == (result, rule), (src, r)
            if pattern:
                assert r.get("pattern") == pattern, r
            assert r.level == "notice" and r.get("bytes_in") == "0" and r.get("bytes_out") == "0", r
        # the refused never reached the backend
        admitted = sorted(peer[0] for _, peer in be.peers)
        assert admitted == ["127.0.0.1", "127.0.0.1"], be.peers   # the forward connects from 127.0.0.1 each time
        assert len(be.peers) == 2


def test_office_move_trap_global_allow_makes_allow_star_admit_nothing_from_here(proxy, tmp_path):
    with Backend(echo_handler) as be:
        fport = free_port()
        p = start_forwards(proxy, [("web", fport, be.port, "allow *\n")], extra_head="allow 10.*\n")
        got, local = echo_roundtrip(fport, b"hello")
        assert got == b""
        r = last_forward(p, local)
        assert r.get("result") == "not-allowed" and r.get("rule") == "global", r
        assert be.peers == []
        c = run_cli("check-config", p.config_path)
        assert c.returncode == 0, c.stderr
        warn = c.stderr.decode()
        assert f"{p.config_path}: warning: forward web: allow * admits only what the global allow rules admit" in warn


# --------------------------------------------------------------------------
# 5. limits and failures
# --------------------------------------------------------------------------

def test_max_connections_refuses_the_second_concurrent_client(proxy):
    with Backend(hold_handler) as be:
        fport = free_port()
        p = start_forwards(proxy, [("one", fport, be.port, "max_connections 1\n")])
        first = connect(fport)
        first_local = "%s:%d" % first.getsockname()[:2]
        wait_until(lambda: len(be.peers) == 1, what="first client at the backend")
        t0 = time.monotonic()
        got, local = echo_roundtrip(fport, b"x", timeout=5)
        assert got == b"" and time.monotonic() - t0 < 2, "closed at once"
        r = last_forward(p, local)
        assert r.get("result") == "too-many-connections" and r.level == "notice", r
        assert len(be.peers) == 1
        first.close()
        assert last_forward(p, first_local).get("result") == "done-remote-closed"
        # the slot is free again
        wait_until(lambda: echo_roundtrip(fport, b"y")[0] == b"" and len(be.peers) == 2, what="a second admitted client")


@needs_127_0_0_x
def test_max_per_host_counts_each_client_address(proxy):
    with Backend(hold_handler) as be:
        fport = free_port()
        p = start_forwards(proxy, [("host", fport, be.port, "max_per_host 1\n")])
        a = connect(fport)
        wait_until(lambda: len(be.peers) == 1, what="first client at the backend")
        got, local = echo_roundtrip(fport, b"x", timeout=5)
        assert got == b""
        assert last_forward(p, local).get("result") == "too-many-from-host"
        b = connect(fport, source="127.0.0.2")           # another address still gets in
        wait_until(lambda: len(be.peers) == 2, what="127.0.0.2 at the backend")
        a.close()
        b.close()


def test_closed_backend_port_gives_local_connect_failed(proxy, closed_port):
    fport = free_port()
    p = start_forwards(proxy, [("dead", fport, closed_port, "")])
    got, local = echo_roundtrip(fport, b"x", timeout=5)
    assert got == b""
    r = last_forward(p, local)
    assert r.get("result") == "local-connect-failed" and r.get("dest") == f"{HOST}:{closed_port}", r
    assert r.get("error") is not None and "refused" in r.get("error"), r


def test_timeout_idle_closes_a_silent_forward(proxy):
    with Backend(hold_handler) as be:
        fport = free_port()
        p = start_forwards(proxy, [("idle", fport, be.port, "timeout_idle 1\n")])
        c = connect(fport, timeout=6)
        local = "%s:%d" % c.getsockname()[:2]
        t0 = time.monotonic()
        try:
            rest = c.recv(10)
        except ConnectionResetError:
            rest = b""
        elapsed = time.monotonic() - t0
        c.close()
        assert rest == b"" and 0.8 <= elapsed <= 4, elapsed
        r = last_forward(p, local)
        assert r.get("result") == "timeout", r
        assert 0.8 <= float(r.get("duration")) <= 4, r


# --------------------------------------------------------------------------
# 8. the real rinetd and import-rinetd of the same file admit the same clients
# --------------------------------------------------------------------------

RINETD = shutil.which("rinetd") or "/usr/sbin/rinetd"
CLIENTS = ["127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5", "127.0.0.10"]


def rinetd_conf(tmp_path, ports, echo_port):
    p1, p2, p3, p4 = ports
    return f"""# rinetd.conf shared by rinetd 0.73 and smtpgate import-rinetd.
# The global rules are there on purpose: rinetd 0.73, when a file has NO global rules, skips the first
# allow/deny rule of the first forwarding rule that has rules, so without them the two would differ by
# that quirk and not by the order of evaluation this test compares.
allow 127.0.0.?
deny 127.0.0.3
{HOST} {p1} {HOST} {echo_port}
allow 127.0.0.1
allow 127.0.0.3
{HOST} {p2} {HOST} {echo_port}
deny 127.0.0.2
{HOST} {p3} {HOST} {echo_port}
allow 127.0.0.*
deny 127.0.0.4
# no rules of its own: only the global ones
{HOST} {p4} {HOST} {echo_port}
logfile {tmp_path}/rinetd.log
pidlogfile {tmp_path}/rinetd.pid
"""


# what rinetd's documented order gives (global allow must match, global deny refuses, then the
# forward's allows must match one, its denies refuse): the table both daemons are held to
EXPECTED = {
    0: {"127.0.0.1"},                                        # .3 is denied globally, the rest not allowed
    1: {"127.0.0.1", "127.0.0.4", "127.0.0.5"},              # .2 denied here, .3 globally, .10 outside 127.0.0.?
    2: {"127.0.0.1", "127.0.0.2", "127.0.0.5"},              # .4 denied here
    3: {"127.0.0.1", "127.0.0.2", "127.0.0.4", "127.0.0.5"},
}


def admitted(ports):
    out = {}
    for i, port in enumerate(ports):
        out[i] = set()
        for src in CLIENTS:
            payload = f"from {src} to {i}\n".encode()
            got, _ = echo_roundtrip(port, payload, source=src, timeout=3)
            assert got in (payload, b""), (i, src, got)      # all or nothing: refused = closed without data
            if got == payload:
                out[i].add(src)
    return out


@needs_127_0_0_x
def test_rinetd_and_imported_config_admit_and_refuse_the_same_clients(proxy, tmp_path):
    if not os.path.exists(RINETD):
        pytest.skip("rinetd not installed (scripts/deps.sh installs it)")
    with Backend(echo_handler) as echo:
        ports = [free_port() for _ in range(4)]
        conf = tmp_path / "rinetd.conf"
        conf.write_text(rinetd_conf(tmp_path, ports, echo.port))

        # rinetd first, in the foreground, on the file's ports
        out = open(tmp_path / "rinetd.out", "wb")
        rd = subprocess.Popen([RINETD, "-f", "-c", str(conf)], stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                              start_new_session=True)
        try:
            wait_until(lambda: rd.poll() is not None or all(port_listening(p) for p in ports),
                       what="rinetd listening")
            assert rd.poll() is None, (tmp_path / "rinetd.out").read_text()
            by_rinetd = admitted(ports)
        finally:
            rd.terminate()
            try:
                rd.wait(5)
            except subprocess.TimeoutExpired:
                rd.kill()
                rd.wait(5)
            out.close()
        wait_until(lambda: not any(port_listening(p) for p in ports), what="rinetd's ports closed")

        # then SMTPGate with the translation of the same file, on the same ports
        imp = run_cli("import-rinetd", conf)
        assert imp.returncode == 0, imp.stderr
        text = imp.stdout.decode()
        assert [l for l in text.splitlines() if l.startswith("[")] == \
            ["[forward rinetd-7]", "[forward rinetd-10]", "[forward rinetd-12]", "[forward rinetd-16]"], text
        p = proxy(1, start=False)
        p.port = ports[0]
        sectioned(p, text, wait_ports=ports)
        by_smtpgate = admitted(ports)

        assert by_rinetd == EXPECTED, by_rinetd
        assert by_smtpgate == by_rinetd
        # SMTPGate says why: one forward line per client and port, refusals at notice with the rule
        lines = wait_until(lambda: (lambda r: r if len(r) == len(CLIENTS) * 4 else None)(p.events("forward")),
                           what="a forward line per connection")
        for r in lines:
            i = ["rinetd-7", "rinetd-10", "rinetd-12", "rinetd-16"].index(r.get("listener"))
            src = r.get("client").rsplit(":", 1)[0]
            if src in EXPECTED[i]:
                assert r.get("result") == "done-remote-closed", r
            else:
                assert r.get("result") in ("not-allowed", "denied") and r.get("rule") in ("global", "forward"), r
        denied_global = {(r.get("listener"), r.get("client").rsplit(":", 1)[0]) for r in lines
                         if r.get("result") == "denied" and r.get("rule") == "global"}
        assert denied_global == {(f, "127.0.0.3") for f in ("rinetd-7", "rinetd-10", "rinetd-12", "rinetd-16")}


def test_import_rinetd_refuses_what_it_cannot_translate(tmp_path):
    conf = tmp_path / "rinetd.conf"
    for text, line, word in (("allow 127.0.0.1\n0.0.0.0 53/udp 127.0.0.1 53\n", 2, "udp"),
                             ("# comment\n127.0.0.1 8080 backend.example.test 80\n", 2, "backend.example.test")):
        conf.write_text(text)
        r = run_cli("import-rinetd", conf)
        assert r.returncode == 1 and r.stdout == b"", (text, r)
        err = r.stderr.decode()
        assert err.startswith(f"{conf}:{line}: ") and word in err, err


def test_8mib_both_ways_at_once_without_either_side_reading_first(proxy):
    """Both ends write 8 MiB while the other is writing too: a relay that stops reading one way while the
    other way's writes are blocked would deadlock (every wait here is bounded)."""
    answer = random.Random(7).randbytes(8 * MiB)
    seen = {}

    def handler(c, index):
        w = threading.Thread(target=lambda: (c.sendall(answer), c.shutdown(socket.SHUT_WR)), daemon=True)
        w.start()
        seen["sha"] = sha(recv_all(c, limit=64 * MiB))
        w.join(IO_TIMEOUT)

    with Backend(handler) as be:
        fport = free_port()
        p = start_forwards(proxy, [("both", fport, be.port, "")])
        c = connect(fport, timeout=20)
        local = "%s:%d" % c.getsockname()[:2]
        payload = os.urandom(8 * MiB)
        errs = []

        def write():
            try:
                c.sendall(payload)
                c.shutdown(socket.SHUT_WR)
            except OSError as e:
                errs.append(e)

        w = threading.Thread(target=write, daemon=True)
        w.start()
        got = recv_all(c, limit=64 * MiB)
        w.join(20)
        c.close()
        assert not errs and not w.is_alive()
        assert sha(got) == sha(answer)
        wait_until(lambda: "sha" in seen, timeout=10, what="backend digest")
        assert seen["sha"] == sha(payload)
        fw = last_forward(p, local, timeout=10)
        assert fw.get("bytes_in") == str(len(payload)) and fw.get("bytes_out") == str(len(answer)), fw
        assert fw.get("result") in ("done-local-closed", "done-remote-closed"), fw


# --------------------------------------------------------------------------
# IPv6, reloads of rules, a classic file plus forwards, SIGTERM
# --------------------------------------------------------------------------

@pytest.mark.skipif(not __import__("conftest").has_ipv6_loopback(), reason="no ::1 here")
def test_ipv6_and_a_dual_stack_end_match_ipv4_patterns_on_the_plain_address(proxy):
    with Backend(echo_handler) as be:
        port, port6 = free_port(), free_port()
        p = proxy(1, start=False)
        p.port = port
        sectioned(p, head(p, "allow 127.0.0.1\nallow ::1\n", mode=False) + f"""
[forward dual]
mode fixed
bind_address ::
port {port}
fixed_server_port {be.port}

[forward six]
mode fixed
bind_address ::1
port {port6}
fixed_server_port {be.port}
deny ::*
""", wait_ports=[port6])
        (lst,) = p.wait_event("listening", listener="dual")
        assert lst.get("address") == f"[::]:{port}"
        # an IPv4 client of the dual-stack end is matched as 127.0.0.1, not ::ffff:127.0.0.1
        got, local = echo_roundtrip(port, b"four")
        assert got == b"four"
        assert last_forward(p, local).get("client") == local
        got, local2 = echo_roundtrip(port, b"four", source="127.0.0.2")
        assert got == b""
        assert last_forward(p, local2).get("result") == "not-allowed"
        c6 = socket.create_connection(("::1", port), timeout=5)
        local6 = "[::1]:%d" % c6.getsockname()[1]
        c6.sendall(b"six")
        assert c6.recv(10) == b"six"
        c6.close()
        assert last_forward(p, local6).get("result") == "done-remote-closed"
        c6 = socket.create_connection(("::1", port6), timeout=5)
        local6 = "[::1]:%d" % c6.getsockname()[1]
        c6.close()
        r = last_forward(p, local6)
        assert r.get("result") == "denied" and r.get("pattern") == "::*" and r.get("rule") == "forward", r


@needs_127_0_0_x
def test_reload_changing_only_rules_keeps_the_socket_and_applies_to_new_connections(proxy):
    with Backend(echo_handler) as be:
        fport = free_port()
        p = start_forwards(proxy, [("web", fport, be.port, "")])
        kept = connect(fport)
        kept.sendall(b"a")
        assert kept.recv(5) == b"a"
        assert echo_roundtrip(fport, b"x", source="127.0.0.2")[0] == b"x"
        p.write_config(head(p, mode=False) + fwd("web", fport, be.port, "deny 127.0.0.2\n"))
        p.signal(signal.SIGHUP)
        (rec,) = p.wait_event("reload")
        assert rec.get("result") == "ok" and rec.get("rebound") == "-" and rec.get("added") == "-" \
            and rec.get("removed") == "-", rec
        assert p.events("listener_stopped") == []
        got, local = echo_roundtrip(fport, b"x", source="127.0.0.2")
        assert got == b""
        assert last_forward(p, local).get("result") == "denied"
        assert echo_roundtrip(fport, b"y")[0] == b"y"
        kept.sendall(b"b")                      # admitted before the reload: goes on
        assert kept.recv(5) == b"b"
        kept.close()


def test_reload_with_a_bad_section_keeps_the_running_forwards(proxy):
    with Backend(echo_handler) as be:
        fport = free_port()
        p = start_forwards(proxy, [("web", fport, be.port, "")])
        text = head(p, mode=False) + fwd("web", fport, be.port, "max_recipients 3\n")
        p.write_config(text)
        p.signal(signal.SIGHUP)
        (rec,) = p.wait_event("reload")
        assert rec.get("result") == "failed", rec
        line = text.splitlines().index("max_recipients 3") + 1
        assert f"{p.config_path}:{line}:" in rec.get("error") and "max_recipients" in rec.get("error"), rec
        assert rec.get("kept") is not None
        assert echo_roundtrip(fport, b"still")[0] == b"still"


def test_a_classic_global_smtp_listener_with_forwards_beside_it(mta, proxy):
    """No [listener] section and a global mode: the global options are the SMTP listener 'main'."""
    with Backend(echo_handler) as be:
        p = proxy(mta.port, start=False)
        fport = free_port()
        sectioned(p, head(p) + f"port {p.port}\n" + fwd("echo", fport, be.port, ""), wait_ports=[fport])
        (st,) = p.wait_event("start")
        assert st.get("listeners") == "main,echo" and st.get("address") == f"{HOST}:{p.port}", st
        with Client(p.port) as c:
            assert c.greeting().code == 220
            assert c.cmd("EHLO client.test").code == 250
            assert c.cmd("MAIL FROM:<a@example.org>").code == 250
            assert c.cmd("RCPT TO:<b@example.net>").code == 250
            assert c.cmd("DATA").code == 354
            c.send(b"Subject: main\r\n\r\nclassic\r\n.\r\n")
            assert c.read_reply().code == 250
            c.cmd("QUIT")
            (o,) = p.wait_event("open", client=c.local)
            assert o.get("listener") == "main"
        assert mta.wait_messages(1)[0].content == b"Subject: main\r\n\r\nclassic\r\n"
        assert echo_roundtrip(fport, b"beside")[0] == b"beside"


def test_sigterm_ends_an_open_forward_after_shutdown_timeout(proxy):
    with Backend(echo_handler) as be:
        fport = free_port()
        p = start_forwards(proxy, [("web", fport, be.port, "")], extra_head="")
        c = connect(fport, timeout=8)
        local = "%s:%d" % c.getsockname()[:2]
        c.sendall(b"a")
        assert c.recv(5) == b"a"
        t0 = time.monotonic()
        p.signal(signal.SIGTERM)
        p.wait_event("draining")
        wait_until(lambda: not port_listening(fport), what="the forward's port closed at SIGTERM")
        c.sendall(b"b")                          # still relayed while draining
        assert c.recv(5) == b"b"
        try:
            rest = c.recv(5)
        except ConnectionResetError:
            rest = b""
        assert rest == b""
        assert 2 <= time.monotonic() - t0 <= 7   # shutdown_timeout 3
        c.close()
        p.expect_exit = True
        assert p.wait_exit(10) == 0
        r = last_forward(p, local)
        assert r.get("result") == "shutdown" and r.get("bytes_in") == "2" and r.get("bytes_out") == "2", r


@needs_127_0_0_x
def test_rinetd_073_quirk_without_global_rules_is_noted_and_not_copied(proxy, tmp_path):
    """Without global rules rinetd 0.73 skips the first rule of the first forward that has rules: here its
    'deny 127.0.0.2'.  import-rinetd says so and SMTPGate applies the rule (rinetd's documented meaning)."""
    if not os.path.exists(RINETD):
        pytest.skip("rinetd not installed (scripts/deps.sh installs it)")
    with Backend(echo_handler) as echo:
        p1, p2 = free_port(), free_port()
        conf = tmp_path / "rinetd.conf"
        conf.write_text(f"{HOST} {p1} {HOST} {echo.port}\ndeny 127.0.0.2\nallow 127.0.0.*\n"
                        f"{HOST} {p2} {HOST} {echo.port}\nallow 127.0.0.5\npidlogfile {tmp_path}/rinetd.pid\n")
        clients = ["127.0.0.1", "127.0.0.2", "127.0.0.5"]

        def run_clients():
            return {(i, src) for i, port in enumerate((p1, p2)) for src in clients
                    if echo_roundtrip(port, b"hi", source=src, timeout=3)[0] == b"hi"}

        out = open(tmp_path / "rinetd.out", "wb")
        rd = subprocess.Popen([RINETD, "-f", "-c", str(conf)], stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                              start_new_session=True)
        try:
            wait_until(lambda: rd.poll() is not None or (port_listening(p1) and port_listening(p2)),
                       what="rinetd listening")
            assert rd.poll() is None
            by_rinetd = run_clients()
        finally:
            rd.terminate()
            try:
                rd.wait(5)
            except subprocess.TimeoutExpired:
                rd.kill()
                rd.wait(5)
            out.close()
        wait_until(lambda: not port_listening(p1) and not port_listening(p2), what="rinetd's ports closed")
        imp = run_cli("import-rinetd", conf)
        assert imp.returncode == 0, imp.stderr
        text = imp.stdout.decode()
        assert "# note: rinetd 0.73 skipped the first allow/deny rule of this forward" in text
        p = proxy(1, start=False)
        p.port = p1
        sectioned(p, text, wait_ports=[p2])
        by_smtpgate = run_clients()
        assert by_rinetd == {(0, "127.0.0.1"), (0, "127.0.0.2"), (0, "127.0.0.5"), (1, "127.0.0.5")}, by_rinetd
        assert by_smtpgate == by_rinetd - {(0, "127.0.0.2")}, by_smtpgate


# --------------------------------------------------------------------------
# other forward options: getsockname's loop, outgoing_addr, timeout_connect, proxy_protocol
# --------------------------------------------------------------------------

def test_getsockname_forward_reached_directly_is_a_loop_and_relays_nothing(proxy):
    fport = free_port()
    p = proxy(1, start=False)
    p.port = fport
    sectioned(p, head(p, mode=False) + f"\n[forward gsn]\nmode getsockname\nport {fport}\n")
    got, local = echo_roundtrip(fport, b"x", timeout=3)
    assert got == b""
    r = last_forward(p, local)
    assert r.get("result") == "loop" and r.get("dest") == f"{HOST}:{fport}", r


@needs_127_0_0_x
def test_outgoing_addr_is_the_source_the_destination_sees(proxy):
    with Backend(echo_handler) as be:
        fport = free_port()
        p = start_forwards(proxy, [("out", fport, be.port, "outgoing_addr 127.0.0.2\n")])
        assert echo_roundtrip(fport, b"hello")[0] == b"hello"
        assert [peer[0] for _, peer in be.peers] == ["127.0.0.2"]


def test_timeout_connect_to_a_destination_that_never_answers_the_syn(proxy):
    # a listening socket with a full accept queue: Linux drops further SYNs, the connect hangs
    ls = socket.socket()
    ls.bind((HOST, 0))
    ls.listen(0)
    stuck = []
    try:
        for _ in range(3):
            s = socket.socket()
            s.setblocking(False)
            try:
                s.connect(ls.getsockname())
            except BlockingIOError:
                pass
            stuck.append(s)
        time.sleep(0.3)
        fport = free_port()
        p = start_forwards(proxy, [("slow", fport, ls.getsockname()[1], "timeout_connect 1\n")])
        t0 = time.monotonic()
        got, local = echo_roundtrip(fport, b"x", timeout=6)
        assert got == b"" and 0.8 <= time.monotonic() - t0 <= 4
        r = last_forward(p, local)
        assert r.get("result") == "local-connect-failed" and "timed" in (r.get("error") or ""), r
        assert 0.8 <= float(r.get("duration")) <= 4, r
    finally:
        for s in stuck:
            s.close()
        ls.close()


def test_proxy_protocol_v2_header_precedes_the_clients_bytes(proxy):
    import struct
    seen = {}

    def handler(c, index):
        seen["data"] = recv_all(c)
        c.sendall(b"ok")

    with Backend(handler) as be:
        fport = free_port()
        p = start_forwards(proxy, [("pp", fport, be.port, "proxy_protocol yes\n")])
        got, local = exchange(fport, b"client bytes")
        assert got == b"ok"
        wait_until(lambda: "data" in seen, what="backend data")
        data = seen["data"]
        sig = b"\r\n\r\n\x00\r\nQUIT\n"
        assert data[:12] == sig, data[:32]
        ver_cmd, fam, length = data[12], data[13], struct.unpack("!H", data[14:16])[0]
        assert (ver_cmd, fam) == (0x21, 0x11), data[:16]          # v2 PROXY, TCP over IPv4
        src, dst, sport, dport = struct.unpack("!4s4sHH", data[16:28])
        cport = int(local.rsplit(":", 1)[1])
        assert (socket.inet_ntoa(src), sport) == (HOST, cport)
        assert (socket.inet_ntoa(dst), dport) == (HOST, fport)
        assert data[16 + length:] == b"client bytes"
        r = last_forward(p, local)
        assert r.get("result") == "done-remote-closed", r
        assert r.get("bytes_out") == "2"
        assert r.get("bytes_in") == "12", r          # the client's bytes; the proxy's own header is not counted
