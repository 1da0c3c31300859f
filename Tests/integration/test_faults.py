"""Faults on either side: the MTA refuses, never greets, is slow, dies
mid-DATA or between commands; the client goes silent, disconnects mid-DATA,
sends junk or floods the pipeline.  Each ends in a clean SMTP reply and a log
line, never in an acknowledged-but-lost message or a dead daemon.
"""

import re
import time

import pytest

from conftest import PROXY_NAME, wait_until, start

PN = PROXY_NAME


def deliver_ok(p, mta):
    """A fresh session still delivers a message (the daemon survived)."""
    before = len(mta.messages)
    c = start(p)
    assert c.cmd("MAIL FROM:<after@x.test>").code == 250
    assert c.cmd("RCPT TO:<b@x.test>").code == 250
    assert c.cmd("DATA").code == 354
    c.send(b"still alive\r\n.\r\n")
    assert c.read_reply().code == 250
    c.cmd("QUIT")
    c.close()
    mta.wait_messages(before + 1)
    assert mta.messages[-1].content == b"still alive\r\n"


def test_upstream_connection_refused(closed_port, proxy):
    p = proxy(closed_port)
    c = p.connect()
    line = c.read_line()
    assert re.fullmatch(rb"421 4\.4\.1 " + PN.encode() + rb": cannot connect to \S+: connection refused\r\n",
                        line), line
    assert str(closed_port).encode() in line
    assert c.wait_closed() == b""
    sid = p.session_id(c.local)
    (cf,) = p.wait_event("connect_failed", session=sid)
    assert cf.level == "warning"
    assert cf.get("dest") == f"127.0.0.1:{closed_port}"
    assert "refused" in cf.get("error")
    close = p.wait_close(sid)
    assert close.get("reason") == "connect_failed"
    assert close.get("closed_by") == "proxy"


def test_upstream_never_greets(scripted_mta, proxy):
    s = scripted_mta(greet=False)
    p = proxy(s.port, timeout_connect=1, timeout_idle=1)
    c = p.connect()
    t0 = time.monotonic()
    r = c.read_reply(timeout=8)
    elapsed = time.monotonic() - t0
    assert re.fullmatch(rb"421 4\.4\.[12] " + PN.encode() + rb": [^\r\n]*timed out\r\n", r.raw), r
    assert 0.5 <= elapsed < 6
    assert c.wait_closed() == b""
    wait_until(lambda: s.conns and s.conns[0].closed.is_set(), what="upstream connection closed")


def test_slow_upstream_within_timeouts(scripted_mta, proxy):
    s = scripted_mta(greet_delay=0.7, reply_delay=0.3)
    p = proxy(s.port, timeout_connect=3, timeout_idle=3)
    c = p.connect()
    assert c.greeting().raw == b"220 mta.scripted.test ESMTP scripted\r\n"
    assert c.cmd("EHLO slow.test").code == 250
    assert c.cmd("MAIL FROM:<a@x.test>").code == 250
    assert c.cmd("RCPT TO:<b@x.test>").code == 250
    assert c.cmd("DATA").code == 354
    c.send(b"slow but fine\r\n.\r\n")
    assert c.read_reply().text == "250 2.0.0 Ok: queued as S1"
    assert c.cmd("QUIT").code == 221
    assert s.conns[0].messages == [b"slow but fine\r\n"]


def test_upstream_dies_mid_data(scripted_mta, proxy):
    s = scripted_mta(close_mid_data=100)
    p = proxy(s.port)
    c = start(p)
    assert c.cmd("MAIL FROM:<a@x.test>").code == 250
    assert c.cmd("RCPT TO:<b@x.test>").code == 250
    assert c.cmd("DATA").code == 354
    c.send(b"x" * 200 + b"\r\n")
    wait_until(lambda: s.conns[0].closed.is_set(), what="MTA dropped the connection")
    # the rest of the body holds command-like lines: they are message data, not commands
    try:
        c.send(b"QUIT\r\nMAIL FROM:<evil@x.test>\r\nmore body\r\n.\r\n")
    except OSError as e:
        pytest.fail(f"proxy closed the client connection instead of answering: {e}")
    r = c.read_reply()
    assert r.code != 250
    assert r.raw == f"451 4.4.2 {PN}: connection to destination lost\r\n".encode()
    # next reply belongs to the next command: nothing was answered for the body lines
    assert c.cmd("NOOP").raw == b"250 2.0.0 OK\r\n"
    assert c.cmd("QUIT").raw == f"221 2.0.0 {PN}: closing connection\r\n".encode()
    assert s.conns[0].messages == []
    sid = p.session_id(c.local)
    p.wait_close(sid)
    recs = p.session_records(sid)
    assert [r for r in recs if r.event == "takeover"]
    assert not [r for r in recs if r.event == "transaction" and r.get("result") == "250"]


def test_upstream_closes_between_commands(scripted_mta, proxy):
    s = scripted_mta(close_on="NOOP")
    p = proxy(s.port)
    c = start(p)
    assert c.cmd("NOOP").raw == f"421 4.4.2 {PN}: connection to destination lost\r\n".encode()
    assert c.wait_closed() == b""
    sid = p.session_id(c.local)
    close = p.wait_close(sid)
    assert close.get("closed_by") == "server"
    assert close.get("reason") == "server_closed"


def test_client_idle_timeout(scripted_mta, proxy):
    s = scripted_mta()
    p = proxy(s.port, timeout_idle=1)
    c = start(p)
    t0 = time.monotonic()
    r = c.read_reply(timeout=8)
    assert r.raw == f"421 4.4.2 {PN}: idle timeout\r\n".encode()
    assert 0.8 <= time.monotonic() - t0 < 6
    assert c.wait_closed() == b""
    wait_until(lambda: b"QUIT\r\n" in bytes(s.conns[0].raw), what="QUIT sent upstream")
    sid = p.session_id(c.local)
    close = p.wait_close(sid)
    assert close.get("reason") == "idle_timeout"
    assert close.get("closed_by") == "proxy"


@pytest.mark.parametrize("upstream,helo", [("scripted", "HELO client.test"), ("aiosmtpd", "EHLO client.test")])
def test_idle_timeout_reply_without_enhanced_code(scripted_mta, mta, proxy, upstream, helo):
    """No x.y.z when the client used HELO, or the MTA's EHLO lacked ENHANCEDSTATUSCODES."""
    port = scripted_mta().port if upstream == "scripted" else mta.port
    p = proxy(port, timeout_idle=1)
    c = start(p, helo=helo)
    r = c.read_reply(timeout=8)
    assert r.raw == f"421 {PN}: idle timeout\r\n".encode()
    assert c.wait_closed() == b""


def test_client_disconnects_mid_data(mta, proxy):
    p = proxy(mta.port)
    c = start(p)
    assert c.cmd("MAIL FROM:<a@x.test>").code == 250
    assert c.cmd("RCPT TO:<b@x.test>").code == 250
    assert c.cmd("DATA").code == 354
    c.send(b"Subject: cut\r\n\r\npartial body without end\r\n")
    c.close()
    sid = p.session_id(c.local)
    close = p.wait_close(sid)
    assert close.get("closed_by") == "client"
    assert close.get("reason") == "client_closed"
    wait_until(lambda: all(conn.closed.is_set() for conn in mta.conns), what="upstream closed")
    assert mta.messages == []
    assert not [r for r in p.session_records(sid) if r.event == "transaction" and r.get("result") == "250"]
    deliver_ok(p, mta)


def test_binary_junk_and_overlong_line(mta, proxy):
    p = proxy(mta.port)
    c = start(p)
    junk = bytes((i * 7 + 3) % 256 for i in range(100_000)).replace(b"\n", b"\x01")
    c.send(junk + b"\r\n")
    try:
        r = c.read_reply()
        assert 400 <= r.code < 600, r
    except ConnectionError:
        pass
    c.close()
    deliver_ok(p, mta)


def test_pipeline_flood(scripted_mta, proxy):
    s = scripted_mta()
    p = proxy(s.port, pipeline_size=4, on_takeover_cmds=10)
    c = start(p)
    flood = b"NOOP\r\n" * 10_000
    sent = 0
    seen = b""
    # write and read interleaved, so neither side blocks on a full buffer
    c.sock.settimeout(5)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if sent < len(flood):
            try:
                sent += c.sock.send(flood[sent:sent + 65536])
            except (BrokenPipeError, ConnectionResetError):
                sent = len(flood)
        try:
            c.sock.settimeout(0.05)
            chunk = c.sock.recv(65536)
        except TimeoutError:
            continue
        except ConnectionResetError:
            break
        if not chunk:
            break
        seen += chunk
    else:
        pytest.fail("proxy neither finished nor closed the flooded session in 20s")
    assert b"503 5.0.0 " + PN.encode() + b": pipeline overflow\r\n" in seen
    assert seen.endswith(b"554 5.7.0 " + PN.encode() + b": too many commands after session takeover\r\n")
    c.close()
    # the daemon survived and serves the next session
    c2 = start(p)
    assert c2.cmd("NOOP").text == "250 2.0.0 Ok"
    assert c2.cmd("QUIT").code == 221
