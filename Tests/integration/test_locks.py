"""Locks with the real daemon and the real clamd: ``lock_on virus`` after EICAR, the next connection refused
before any upstream connection, expiry, ``lock_exempt``, ``nat_sources``, a restart that keeps the lock
(the SQLite state store), and the action script run once for the new lock with LOCK_FILE/LOCK_DURATION.

Clients connect from 127.0.0.1 in mode fixed, so the peer is the real client and it is what gets locked.
"""

import os
import re
import time

import pytest

from conftest import PROXY_NAME, start, wait_until
from scanners import eicar_message, harmless_message, send_message
from test_scan import assert_taken_over, clamd_opts

PN = PROXY_NAME
LOCKED = re.compile(rf"554 (5\.7\.1 )?{PN}: your address is locked \(virus\) until (\d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d) UTC")


def lock_opts(tmp_path, clamd, **kw):
    opts = clamd_opts(tmp_path, clamd, lock_on="virus", lock_duration=3600,
                      state_store=f"sqlite:{tmp_path}/state/state.db", control_path=f"{tmp_path}/control.sock")
    opts.update(kw)
    return opts


def infect(p):
    """A session that sends EICAR and is taken over; returns its session id."""
    c = start(p)
    r = send_message(c, eicar_message())
    assert r.code == 550, r
    sid = p.session_id(c.local)
    assert_taken_over(c)
    return sid


def assert_locked_out(p, mta, conns_before):
    """One reply, the lock's, and the MTA never hears of the connection."""
    c = p.connect()
    r = c.read_reply()
    assert LOCKED.match(r.text), r
    c.wait_closed()
    time.sleep(0.3)
    assert len(mta.conns) == conns_before, "a locked client must not reach the MTA"
    return r


def test_a_client_that_sent_a_virus_is_locked_and_refused_before_any_upstream_connection(proxy, mta, clamd, tmp_path):
    p = proxy(mta.port, **lock_opts(tmp_path, clamd))
    sid = infect(p)
    (lock,) = p.wait_event("lock", session=sid)
    assert (lock.get("key"), lock.get("lock_cause"), lock.get("source")) == ("127.0.0.1", "virus", lock.get("source"))
    assert lock.get("reason").startswith("virus"), lock
    assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", lock.get("lock_until")), lock
    conns = len(mta.conns)
    r = assert_locked_out(p, mta, conns)
    until = time.mktime(time.strptime(LOCKED.match(r.text).group(2), "%Y-%m-%d %H:%M:%S")) - time.timezone
    assert 3590 < until - time.time() < 3610, "the reply says when the lock ends"
    (rej,) = p.wait_event("reject", reason="locked")
    assert (rej.get("client").split(":")[0], rej.get("lock_cause")) == ("127.0.0.1", "virus")
    assert p.events("open", session=rej.get("session")) == [], "refused at accept: no lookup, no session"


def test_a_lock_expires_after_lock_duration(proxy, mta, clamd, tmp_path):
    p = proxy(mta.port, **lock_opts(tmp_path, clamd, lock_duration=2))
    infect(p)
    assert_locked_out(p, mta, len(mta.conns))
    time.sleep(2.2)
    c = start(p)
    assert send_message(c, harmless_message()).code == 250
    assert c.cmd("QUIT").code == 221


def test_an_exempt_client_is_never_locked(proxy, mta, clamd, tmp_path):
    p = proxy(mta.port, **lock_opts(tmp_path, clamd, lock_exempt="10.0.0.0/8,127.0.0.0/8"))
    sid = infect(p)
    c = start(p)
    assert send_message(c, harmless_message()).code == 250, "an exempt client goes on"
    assert p.events("lock", session=sid) == []


def test_a_nat_source_is_never_locked(proxy, mta, clamd, tmp_path):
    p = proxy(mta.port, **lock_opts(tmp_path, clamd, nat_sources="127.0.0.1"))
    sid = infect(p)
    c = start(p)
    assert send_message(c, harmless_message()).code == 250, "the router's address stands for many customers"
    assert p.events("lock") == []


def test_a_restart_keeps_the_lock(proxy, mta, clamd, tmp_path):
    opts = lock_opts(tmp_path, clamd)
    p = proxy(mta.port, **opts)
    infect(p)
    p.wait_event("lock")
    p.expect_exit = True
    assert p.stop() == 0
    db = tmp_path / "state" / "state.db"
    assert db.exists() and (os.stat(db).st_mode & 0o777) == 0o600, "the state file is owner-only"
    q = proxy(mta.port, **opts)
    assert_locked_out(q, mta, len(mta.conns))
    (loaded,) = q.wait_event("state_store", result="loaded")
    assert loaded.get("locks") == "1"


def test_the_action_script_runs_once_for_the_new_lock(proxy, mta, clamd, tmp_path):
    out = tmp_path / "actions.txt"
    script = tmp_path / "action.sh"
    script.write_text(f"#!/bin/sh\necho \"$FOUND $LOCK_FILE $LOCK_DURATION $SOURCE_IP\" >> {out}\n")
    script.chmod(0o755)
    p = proxy(mta.port, **lock_opts(tmp_path, clamd, action_script=str(script)))
    infect(p)
    wait_until(lambda: out.exists() and out.read_text(), 5, what="the action script's output")
    assert_locked_out(p, mta, len(mta.conns))
    time.sleep(0.5)
    assert out.read_text().splitlines() == ["VIRUS 127.0.0.1 3600 127.0.0.1"], "once, with the lock's variables"


def test_without_lock_on_a_virus_locks_nobody(proxy, mta, clamd, tmp_path):
    p = proxy(mta.port, **clamd_opts(tmp_path, clamd))
    infect(p)
    c = start(p)
    assert send_message(c, harmless_message()).code == 250
    assert p.events("lock") == []
