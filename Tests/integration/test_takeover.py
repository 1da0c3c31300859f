"""Session takeover: pipeline overflow, the takeover responder's replies,
the on_takeover_cmds limit and timeout_session.

The upstream is the scripted MTA (it advertises ENHANCEDSTATUSCODES, so the
proxy's own replies carry enhanced codes).  A deterministic way into takeover
is an MTA that drops the connection when it sees RCPT while a transaction is
open: the client gets ``451 4.4.2`` and the proxy answers from then on.
"""

import time

from conftest import PROXY_NAME, REPLY_TIMEOUT, wait_until, start

PN = PROXY_NAME


def enter_takeover(p):
    c = start(p)
    assert c.cmd("MAIL FROM:<a@x.test>").code == 250
    r = c.cmd("RCPT TO:<b@x.test>")
    assert r.raw == f"451 4.4.2 {PN}: connection to destination lost\r\n".encode()
    return c


def test_pipeline_overflow(scripted_mta, proxy):
    s = scripted_mta(reply_delay=0.2)
    p = proxy(s.port, pipeline_size=4, on_takeover_cmds=100)
    c = start(p)
    c.send(b"NOOP\r\n" * 20)
    before = []
    deadline = time.monotonic() + 8
    while True:
        r = c.read_reply(max(0.1, deadline - time.monotonic()))
        if r.code != 250:
            break
        before.append(r)
    assert r.raw == f"503 5.0.0 {PN}: pipeline overflow\r\n".encode()
    assert len(before) <= 4
    assert all(b.text == "250 2.0.0 Ok" for b in before)      # the MTA's own replies
    # the session is taken over: the remaining NOOPs are answered by the proxy, in order
    c.send(b"VRFY someone\r\n")
    after = []
    while True:
        r = c.read_reply()
        if r.code != 250:
            break
        after.append(r)
    assert r.raw.startswith(f"502 5.5.1 {PN}: ".encode()), r
    assert all(a.raw == b"250 2.0.0 OK\r\n" for a in after), after
    assert len(before) + 1 + len(after) == 20, "every pipelined command gets exactly one reply"
    assert c.cmd("QUIT").raw == f"221 2.0.0 {PN}: closing connection\r\n".encode()
    assert c.wait_closed() == b""
    # upstream got QUIT and was closed
    conn = s.conns[0]
    wait_until(lambda: conn.closed.is_set(), what="upstream connection closed")
    assert b"QUIT\r\n" in bytes(conn.raw)
    assert bytes(conn.raw).count(b"NOOP\r\n") <= 5
    sid = p.session_id(c.local)
    p.wait_close(sid)
    reasons = {r.get("reason") for r in p.session_records(sid) if r.event in ("takeover", "close")}
    assert "pipeline_overflow" in {str(x).replace(" ", "_") for x in reasons}, reasons


def test_takeover_responder_replies(scripted_mta, proxy):
    s = scripted_mta(close_on="RCPT")
    p = proxy(s.port, on_takeover_cmds=50)
    c = enter_takeover(p)
    ok = b"250 2.0.0 OK\r\n"
    assert c.cmd("NOOP").raw == ok
    assert c.cmd("RSET").raw == ok
    assert c.cmd("noop").raw == ok
    assert c.cmd("HELO again.test").raw == f"250 {PN}\r\n".encode()
    assert c.cmd("EHLO again.test").raw == f"250 {PN}\r\n".encode()
    assert c.cmd("MAIL FROM:<a@x.test>").raw.startswith(f"451 4.3.0 {PN}: ".encode())
    assert c.cmd("RCPT TO:<b@x.test>").raw.startswith(f"503 5.5.1 {PN}: ".encode())
    assert c.cmd("DATA").raw.startswith(f"503 5.5.1 {PN}: ".encode())
    for other in ("VRFY x", "STARTTLS", "BDAT 0 LAST", "AUTH LOGIN", "XYZZY"):
        assert c.cmd(other).raw.startswith(f"502 5.5.1 {PN}: ".encode()), other
    # pipelined commands in takeover are answered in order
    c.send(b"NOOP\r\nmail from:<x@y.test>\r\nQUIT\r\n")
    r1, r2, r3 = c.read_replies(3)
    assert r1.raw == ok
    assert r2.code == 451
    assert r3.raw == f"221 2.0.0 {PN}: closing connection\r\n".encode()
    assert c.wait_closed() == b""
    sid = p.session_id(c.local)
    p.wait_close(sid)
    recs = p.session_records(sid)
    assert [r for r in recs if r.event == "takeover"], recs
    assert not [r for r in recs if r.event == "transaction" and r.get("result") == "250"]
    assert len(s.conns) == 1          # the proxy never reconnected upstream


def test_takeover_command_limit(scripted_mta, proxy):
    s = scripted_mta(close_on="RCPT")
    p = proxy(s.port, on_takeover_cmds=3)
    c = enter_takeover(p)
    for _ in range(3):
        assert c.cmd("NOOP").raw == b"250 2.0.0 OK\r\n"
    r = c.cmd("NOOP")
    assert r.raw == f"554 5.7.0 {PN}: too many commands after session takeover\r\n".encode()
    assert c.wait_closed() == b""
    sid = p.session_id(c.local)
    close = p.wait_close(sid)
    assert close.get("reason") == "takeover_limit"
    assert close.get("closed_by") == "proxy"


def test_takeover_session_timeout(scripted_mta, proxy):
    s = scripted_mta(close_on="RCPT")
    p = proxy(s.port, timeout_session=1, timeout_idle=30)
    c = enter_takeover(p)
    t0 = time.monotonic()
    r = c.read_reply(timeout=8)
    assert r.raw == f"421 4.4.2 {PN}: session timeout\r\n".encode()
    assert time.monotonic() - t0 < 6
    assert c.wait_closed() == b""
    sid = p.session_id(c.local)
    close = p.wait_close(sid)
    assert close.get("reason") == "session_timeout"
    assert close.get("closed_by") == "proxy"
