"""A pool of proxies on one PostgreSQL state store (``state_store postgresql://…``), with a real throw-away
server: a lock made through proxy A refuses the client at proxy B within the delay smtpgate(8) states, a
rate limit counts the messages sent through both, and a server killed mid-run leaves mail flowing (a
rate-limited warning) and converges after it is back.

Both proxies run on this host with their own ``control_path`` (so their own name in the store) and relay to
one aiosmtpd MTA; clients connect from loopback addresses (127.0.0.1, 127.0.0.2), which mode fixed takes
as the real clients.
"""

import re
import subprocess
import time

import pytest

from conftest import PROXY_NAME, SMTPGATE_BIN, start, wait_until
from pgserver import PostgresServer
from scanners import harmless_message, send_message

PN = PROXY_NAME
# What smtpgate(8) states under "A pool of proxies": a lock reaches the others within 3 s, counts within 5 s.
LOCK_DELAY = 3.0
COUNT_DELAY = 5.0


@pytest.fixture
def pg():
    server = PostgresServer()
    yield server
    print(f"--- PostgreSQL server log ---\n{server.server_log()[-3000:]}")
    server.destroy()


def pool(proxy, mta, pg, tmp_path, **kw):
    def opts(name):
        o = dict(state_store=pg.url, control_path=f"{tmp_path}/{name}.sock")
        o.update(kw)
        return o
    return proxy(mta.port, **opts("a")), proxy(mta.port, **opts("b"))


def locks(p, *args):
    r = subprocess.run([SMTPGATE_BIN, "locks", *args, "--config", str(p.config_path)], capture_output=True,
                       text=True, timeout=20)
    assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
    return r.stdout


def greeting_code(p, source="127.0.0.1"):
    c = p.connect(source=source)
    try:
        return c.read_reply().code
    finally:
        c.close()


def first_time(pred, timeout, what):
    """Seconds from now until ``pred()`` holds (polled every 0.1 s), failing after ``timeout``."""
    t0 = time.monotonic()
    wait_until(pred, timeout, interval=0.1, what=what)
    return time.monotonic() - t0


def fresh_hour():
    """A rate test needs all its messages in one hour bucket: wait (bounded) if the hour ends within a minute."""
    left = 3600 - time.time() % 3600
    if left < 60:
        time.sleep(left + 0.05)


def mail_refused(p, source="127.0.0.1"):
    """MAIL through ``p``: the 451 text if it is refused, else None (the transaction is reset, nothing counted)."""
    c = p.connect(source=source)
    try:
        assert c.greeting().code == 220
        assert c.cmd("EHLO client.test").code == 250
        r = c.cmd("MAIL FROM:<alice@customer.test>")
        if r.code == 250:
            c.cmd("RSET")
            return None
        assert r.code == 451, r
        return r.text
    finally:
        c.close()


def test_a_lock_made_through_proxy_a_refuses_the_client_at_proxy_b_within_the_stated_delay(proxy, mta, pg, tmp_path):
    a, b = pool(proxy, mta, pg, tmp_path)
    assert greeting_code(b) == 220
    out = locks(a, "add", "127.0.0.1", "--for", "600", "--reason", "abuse report 4711")
    assert out.startswith("locked 127.0.0.1 until "), out
    took = first_time(lambda: greeting_code(b) == 554, 10, "proxy B refusing the client locked through proxy A")
    print(f"lock reached proxy B after {took:.2f} s")
    assert took <= LOCK_DELAY
    assert greeting_code(b, source="127.0.0.2") == 220, "only the locked client"
    assert "lock admin" in locks(b, "show", "127.0.0.1")
    # Lifted through B, A lets the client in again as soon.
    locks(b, "remove", "127.0.0.1")
    took = first_time(lambda: greeting_code(a) == 220, 10, "proxy A letting the client in after the unlock through B")
    assert took <= LOCK_DELAY
    rows = pg.psql("SELECT key, removed, removed_by LIKE '%b.sock' FROM locks").split()
    assert rows == ["127.0.0.1|t|t"], rows


def test_a_rate_limit_counts_the_messages_sent_through_both_proxies(proxy, mta, pg, tmp_path):
    a, b = pool(proxy, mta, pg, tmp_path, ratelimit_messages="4/1h")
    fresh_hour()
    for p in (a, a, b, b):
        c = start(p)
        assert send_message(c, harmless_message()).code == 250
        c.close()
    assert len(mta.wait_messages(4)) == 4
    # Each proxy alone has counted two; the limit is the pool's.
    took = first_time(lambda: mail_refused(a) is not None, 10, "proxy A refusing the fifth message")
    print(f"proxy B's counts reached proxy A after {took:.2f} s")
    assert took <= COUNT_DELAY
    text = mail_refused(a)
    assert text == f"451 {PN}: rate limit reached, try again later (4 messages in 3600 s, ratelimit_messages 4/3600)", text
    first_time(lambda: mail_refused(b) is not None, COUNT_DELAY, "proxy B refusing the fifth message")
    assert "ratelimit_messages 4.0 of 4 in 3600 s" in locks(b, "show", "127.0.0.1")
    assert mail_refused(b, source="127.0.0.2") is None, "another client is not limited"
    (line,) = a.wait_event("ratelimit", count=1)[:1]
    assert (line.get("kind"), line.get("count"), line.get("limit"), line.get("window")) == ("messages", "4", "4", "3600"), line
    assert len(mta.messages) == 4


def test_the_server_killed_mid_run_leaves_mail_flowing_and_the_state_converges_after_it_returns(proxy, mta, pg, tmp_path):
    a, b = pool(proxy, mta, pg, tmp_path, ratelimit_messages="100/1h")
    fresh_hour()
    c = start(a)
    assert send_message(c, harmless_message()).code == 250
    c.close()
    pg.kill()
    for p in (a, b):
        (warning,) = p.wait_event("state_store", timeout=10, result="failing")
        assert warning.level == "warning" and pg.sock in warning.get("error"), warning
    # Mail flows on local state, and the proxies keep deciding: a lock made now applies at A at once.
    for _ in range(3):
        c = start(a)
        assert send_message(c, harmless_message()).code == 250
        c.close()
    assert len(mta.wait_messages(4)) == 4
    locks(a, "add", "127.0.0.2", "--reason", "during the outage")
    assert greeting_code(a, source="127.0.0.2") == 554
    assert greeting_code(b, source="127.0.0.2") == 220, "B cannot know yet"
    assert "4.0 of 100" not in locks(b, "show", "127.0.0.1"), "nor has it A's counts"
    time.sleep(3)
    pg.start()
    wait_until(lambda: greeting_code(b, source="127.0.0.2") == 554, 15, interval=0.2,
               what="proxy B refusing the client locked through A while the server was down")
    wait_until(lambda: "ratelimit_messages 4.0 of 100 in 3600 s" in locks(b, "show", "127.0.0.1"), 15, interval=0.2,
               what="proxy B counting the four messages sent through A")
    for p in (a, b):
        assert len(p.events("state_store", result="failing")) == 1, "the warning is rate-limited"
    rows = pg.psql("SELECT key FROM locks WHERE NOT removed").split()
    assert rows == ["127.0.0.2"], rows
