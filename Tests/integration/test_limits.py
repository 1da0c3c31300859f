"""Admission limits: max_connections and max_per_host answer ``554`` with the
limit named, CRLF-terminated, log a ``reject`` line, never contact the MTA for
the rejected client, and admit again once a slot is free.
"""

from conftest import PROXY_NAME, Client, wait_until

PN = PROXY_NAME


def admitted(p, source=None):
    c = p.connect(source=source)
    r = c.greeting()
    assert r.code == 220, r
    return c


def try_admit(p):
    c = p.connect()
    r = c.read_reply()
    if r.code == 220:
        return c
    c.close()
    return None


def test_max_connections(mta, proxy):
    p = proxy(mta.port, max_connections=2)
    c1 = admitted(p)
    c2 = admitted(p)
    c3 = p.connect()
    line = c3.read_line()
    assert line == f"554 5.7.0 {PN}: too many connections (max_connections 2)\r\n".encode()
    assert c3.wait_closed() == b""
    (rej,) = p.wait_event("reject", client=c3.local)
    assert rej.get("reason") == "max_connections"
    assert rej.get("limit") == "2"
    assert rej.get("session") and rej.get("listener")
    assert len(mta.conns) == 2, "the rejected client must not cause an upstream connection"
    # the admitted sessions are unaffected
    assert c1.cmd("EHLO one.test").code == 250
    assert c2.cmd("EHLO two.test").code == 250
    # a slot frees up when a session ends
    c1.cmd("QUIT")
    c1.close()
    c4 = wait_until(lambda: try_admit(p), timeout=5, what="admission after a session ended")
    assert c4.cmd("EHLO four.test").code == 250
    c2.close()
    c4.close()


def test_max_per_host(mta, proxy):
    p = proxy(mta.port, max_per_host=1, max_connections=0)
    c1 = admitted(p)
    c2 = p.connect()
    assert c2.read_line() == f"554 5.7.0 {PN}: too many connections from your host (max_per_host 1)\r\n".encode()
    assert c2.wait_closed() == b""
    (rej,) = p.wait_event("reject", client=c2.local)
    assert rej.get("reason") == "max_per_host"
    assert rej.get("limit") == "1"
    # another host is not affected
    c3 = admitted(p, source="127.0.0.2")
    assert c3.cmd("EHLO other-host.test").code == 250
    assert c1.cmd("EHLO first.test").code == 250
    sid = p.session_id(c3.local)
    assert sid
    c1.close()
    c3.close()
