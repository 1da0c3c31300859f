"""Locks with the real daemon and the real clamd: ``lock_on virus`` after EICAR, the next connection refused
before any upstream connection, expiry, ``lock_exempt``, ``nat_sources``, a restart that keeps the lock
(the SQLite state store), and the action script run once for the new lock with LOCK_FILE/LOCK_DURATION.

Clients connect from 127.0.0.1 in mode fixed, so the peer is the real client and it is what gets locked.
"""

import json
import os
import re
import subprocess
import time

import pytest

from conftest import PROXY_NAME, SMTPGATE_BIN, start, wait_until
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


# -- smtpgate locks -----------------------------------------------------------------------------------------

def locks(p, *args, ok=True):
    r = subprocess.run([SMTPGATE_BIN, "locks", *args, "--config", str(p.config_path)], capture_output=True,
                       text=True, timeout=20)
    if ok:
        assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
    return r


def test_locks_add_list_remove_on_the_running_daemon(proxy, mta, clamd, tmp_path):
    p = proxy(mta.port, **lock_opts(tmp_path, clamd))
    r = locks(p, "add", "127.0.0.1", "--for", "600", "--reason", "abuse report 4711")
    assert r.stdout.startswith("locked 127.0.0.1 until "), r.stdout
    (line,) = p.wait_event("lock", source="admin")
    assert (line.get("key"), line.get("lock_cause"), line.get("reason")) == ("127.0.0.1", "admin", "abuse report 4711")
    c = p.connect()
    r = c.read_reply()
    assert re.match(rf"554 5\.7\.1 {PN}: your address is locked \(admin\) until ", r.text), r
    listed = json.loads(locks(p, "list", "--json").stdout)
    assert [(l["key"], l["cause"], l["reason"]) for l in listed] == [("127.0.0.1", "admin", "abuse report 4711")]
    assert 590 <= listed[0]["expires"] - time.time() <= 600
    table = locks(p, "list").stdout.splitlines()
    assert table[0].split() == ["KEY", "CAUSE", "SINCE", "UNTIL", "REASON"] and table[1].startswith("127.0.0.1")
    assert "abuse report 4711" in table[1]
    locks(p, "remove", "127.0.0.1")
    p.wait_event("unlock", key="127.0.0.1", source="admin")
    c = start(p)
    assert send_message(c, harmless_message()).code == 250, "unlocked on the next connection"
    bad = locks(p, "remove", "127.0.0.1", ok=False)
    assert bad.returncode == 1 and "is not locked" in bad.stderr
    bad = locks(p, "add", "not-an-address", ok=False)
    assert bad.returncode == 1 and "not-an-address" in bad.stderr


def test_locks_work_on_the_store_with_the_daemon_down_and_the_daemon_loads_them(proxy, mta, clamd, tmp_path):
    p = proxy(mta.port, start=False, **lock_opts(tmp_path, clamd))
    (tmp_path / "state").mkdir()
    r = locks(p, "add", "127.0.0.1", "--reason", "by hand")
    assert "daemon not running" in r.stdout, r.stdout
    assert [l["key"] for l in json.loads(locks(p, "list", "--json").stdout)] == ["127.0.0.1"]
    p.start()
    c = p.connect()
    assert c.read_reply().code == 554
    assert "not locked" not in locks(p, "show", "127.0.0.1").stdout


def test_a_client_locked_during_its_message_gets_451_and_the_mta_never_sees_the_dot(proxy, mta, clamd, tmp_path):
    p = proxy(mta.port, **lock_opts(tmp_path, clamd))
    c = start(p)
    assert c.cmd("MAIL FROM:<alice@customer.test>").code == 250
    assert c.cmd("RCPT TO:<bob@example.test>").code == 250
    assert c.cmd("DATA").code == 354
    c.send(b"Subject: hello\r\n\r\nbody\r\n")
    locks(p, "add", "127.0.0.1", "--for", "60")
    c.send(b".\r\n")
    r = c.read_reply()
    assert r.raw == f"451 {PN}: your address was locked (admin), message not sent\r\n".encode()
    assert c.cmd("QUIT").code == 221
    assert mta.conns[0].closed.wait(5)
    assert b"\r\n.\r\n" not in mta.raw_all() and mta.messages == []
    (txn,) = p.wait_event("transaction")
    assert (txn.get("result"), txn.get("why")) == ("aborted", "locked")


def test_locks_import_takes_over_an_smtp_gated_lock_directory(proxy, mta, clamd, tmp_path):
    old = tmp_path / "smtp-gated-lock"
    old.mkdir()
    now = time.time()
    (old / "10.1.2.3").write_text("VIRUS\n")
    os.utime(old / "10.1.2.3", (now - 600, now - 600))
    (old / "10.1.2.4-bob").write_text("SPAM\n")
    (old / "10.9.9.9").write_text("VIRUS\n")
    os.utime(old / "10.9.9.9", (now - 7200, now - 7200))
    saint = old / "10.5.5.5"
    saint.write_text("our own server\n")
    os.chown(saint, 65534, 65534)
    (old / "garbage name").write_text("x")
    p = proxy(mta.port, **lock_opts(tmp_path, clamd))
    r = locks(p, "import", str(old))
    assert "imported 2 lock(s); skipped 1 expired" in r.stdout, r.stdout
    assert "lock_exempt 10.5.5.5" in r.stdout
    listed = {l["key"]: l for l in json.loads(locks(p, "list", "--json").stdout)}
    assert set(listed) == {"10.1.2.3", "bob@10.1.2.4"}
    assert 2990 <= listed["10.1.2.3"]["expires"] - now <= 3010, "mtime + lock_duration"
    assert listed["10.1.2.3"]["reason"] == "imported from smtp-gated: VIRUS"


def test_check_config_warns_about_fixed_mode_locks_without_nat_sources(tmp_path):
    conf = tmp_path / "c.conf"
    conf.write_text("mode fixed\nfixed_server 127.0.0.1\nlock_on virus\n")
    r = subprocess.run([SMTPGATE_BIN, "check-config", str(conf)], capture_output=True, text=True, timeout=20)
    assert r.returncode == 0 and "warning: mode fixed with lock_on" in r.stderr, r.stderr
    assert "lock_on virus" in r.stdout
    conf.write_text("mode fixed\nfixed_server 127.0.0.1\nlock_on virus\nnat_sources 192.0.2.1\n")
    r = subprocess.run([SMTPGATE_BIN, "check-config", str(conf)], capture_output=True, text=True, timeout=20)
    assert "warning" not in r.stderr


def test_a_corrupt_state_file_is_a_clear_error_at_start(proxy, mta, clamd, tmp_path):
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "state.db").write_bytes(b"this is not sqlite" * 100)
    p = proxy(mta.port, start=False, **lock_opts(tmp_path, clamd))
    p.expect_exit = True
    r = subprocess.run([SMTPGATE_BIN, "run", "--config", str(p.config_path)], capture_output=True, text=True, timeout=20)
    assert r.returncode == 1
    assert "is not a valid SMTPGate state database" in r.stderr, r.stderr


def test_a_second_daemon_on_the_same_control_path_is_refused_and_the_first_keeps_its_socket(proxy, mta, clamd, tmp_path):
    p = proxy(mta.port, **lock_opts(tmp_path, clamd))
    q = proxy(mta.port, start=False, **lock_opts(tmp_path, clamd))
    q.expect_exit = True
    r = subprocess.run([SMTPGATE_BIN, "run", "--config", str(q.config_path)], capture_output=True, text=True, timeout=20)
    assert r.returncode == 1 and "another smtpgate answers on it" in r.stderr, r.stderr
    assert json.loads(locks(p, "list", "--json").stdout) == [], "the running daemon still answers"
