"""``earlytalker`` and ``earlytalker_wait`` with the real daemon and the aiosmtpd MTA: a client that talks
before the MTA's greeting reached it gets 554 5.5.1 and never reaches the MTA's dialogue, one that waits is
relayed as before, ``earlytalker_wait`` delays the greeting by its seconds, and ``lock_on earlytalk`` locks
the talker.

Clients connect from chosen 127.0.0.0/8 addresses in mode fixed, so the peer is the real client.
"""

import re
import time

from conftest import PROXY_NAME, Client, start
from scanners import harmless_message, send_message

EARLY = f"554 5.5.1 {PROXY_NAME}: protocol error: you talked before the greeting"


def talk_first(p, source):
    """Connects, sends EHLO at once, and returns the client once it has a reply."""
    c = Client(p.port, source=source)
    c.send(b"EHLO early.test\r\n")
    return c


def test_a_client_that_talks_first_is_refused_and_the_mta_hears_no_command(proxy, mta):
    p = proxy(mta.port, earlytalker=True, earlytalker_wait=1)
    c = talk_first(p, "127.0.0.21")
    r = c.read_reply(timeout=3)
    assert r.text == EARLY, r
    c.wait_closed()
    (rej,) = p.wait_event("reject", reason="earlytalk")
    assert rej.get("client").startswith("127.0.0.21:") and rej.get("bytes") == "17", rej
    (close,) = p.wait_event("close", session=rej.get("session"))
    assert close.get("reason") == "earlytalk" and close.get("closed_by") == "proxy", close
    time.sleep(0.3)
    assert mta.messages == [] and all(not conn.raw for conn in mta.conns), "no byte reached the MTA"


def test_a_client_that_waits_gets_the_greeting_after_earlytalker_wait_and_is_relayed(proxy, mta):
    p = proxy(mta.port, earlytalker=True, earlytalker_wait=0.8)
    t0 = time.monotonic()
    c = Client(p.port, source="127.0.0.22")
    g = c.greeting(timeout=5)
    took = time.monotonic() - t0
    assert g.code == 220 and 0.75 <= took < 3, (g, took)
    assert c.cmd("EHLO patient.test").code == 250
    assert send_message(c, harmless_message()).code == 250
    assert c.cmd("QUIT").code == 221
    assert len(mta.messages) == 1
    assert p.events("reject") == []


def test_without_a_wait_a_talker_is_still_caught_before_the_greeting(proxy, scripted_mta):
    # An MTA that greets only after 1 s: the window postscreen calls the greet wait comes from the MTA.
    m = scripted_mta(greet_delay=1.0)
    p = proxy(m.port, earlytalker=True)
    c = talk_first(p, "127.0.0.23")
    assert c.read_reply(timeout=3).text == EARLY
    c.wait_closed()
    p.wait_event("reject", reason="earlytalk")


def test_lock_on_earlytalk_locks_the_talker(proxy, mta, tmp_path):
    p = proxy(mta.port, earlytalker=True, earlytalker_wait=0.5, lock_on="earlytalk", lock_duration=600,
              state_store=f"sqlite:{tmp_path}/state.db", control_path=f"{tmp_path}/control.sock",
              nat_sources="192.0.2.1")
    c = talk_first(p, "127.0.0.24")
    assert c.read_reply(timeout=3).text == EARLY
    c.wait_closed()
    (lock,) = p.wait_event("lock", key="127.0.0.24")
    assert lock.get("lock_cause") == "earlytalk" and lock.get("reason").startswith("talked before the greeting"), lock
    again = Client(p.port, source="127.0.0.24")
    r = again.read_reply(timeout=3)
    assert re.match(rf"554 5\.7\.1 {PROXY_NAME}: your address is locked \(earlytalk\)", r.text), r
    again.wait_closed()
    other = Client(p.port, source="127.0.0.25")
    assert other.greeting(timeout=3).code == 220, "another client is not locked"
    other.close()


def test_earlytalker_off_lets_a_pipelining_client_through(proxy, mta):
    p = proxy(mta.port)
    c = talk_first(p, "127.0.0.26")
    assert c.greeting().code == 220
    assert c.read_reply().code == 250, "the early EHLO is relayed once the greeting is out"
    assert c.cmd("QUIT").code == 221
