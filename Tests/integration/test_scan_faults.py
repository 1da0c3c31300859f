"""Scanning faults: clamd stopped, clamd answering garbage, clamd slower than timeout_scanner, spamd down,
the spool unusable, the MTA vanishing after the final dot, the client vanishing mid-DATA, and a virus in
the middle of three pipelined transactions.

A failure of ours is a 451 (the client keeps the message and retries), never a 550; nothing is stored;
ignore_errors yes lets the message through.  No message is ever acknowledged that the MTA did not store.
"""

import re
import time

import pytest

from conftest import PROXY_NAME, ConnectionClosed, start, wait_until
from scanners import (assert_spool, clean_message, dot_stuff, eicar_message, harmless_message, send_message,
                      spool_files)

PN = PROXY_NAME


def not_scanned(what, enhanced=False):
    code = r"451 4\.3\.0 " if enhanced else r"451 "
    return re.compile(code + rf"{PN}: message not scanned, try again later \({what}: [^\r\n]+\)")


def scanning(tmp_path, antivirus_path, **kw):
    opts = dict(antivirus_type="clamd", antivirus_path=antivirus_path, spool_path=str(tmp_path / "spool"),
                timeout_scanner=5)
    opts.update(kw)
    return opts


def assert_refused_for_now(p, c, mta, r, what, why="scan_error"):
    """451 for the message, the session taken over, nothing stored, and the log says why."""
    assert not_scanned(what).fullmatch(r.text), r
    assert c.cmd("MAIL FROM:<again@customer.test>").code == 451
    assert c.cmd("QUIT").code == 221
    sid = p.session_id(c.local)
    (txn,) = p.wait_event("transaction", session=sid)
    assert (txn.get("result"), txn.get("why")) == ("aborted", why)
    assert mta.conns and mta.conns[0].closed.wait(5)
    assert b"\r\n.\r\n" not in mta.raw_all(), "the MTA never saw the final dot"
    assert mta.messages == []
    return sid


def error_scan(p, sid, scanner="clamd"):
    (scan,) = p.wait_event("scan", session=sid, scanner=scanner)
    assert scan.get("result") == "error"
    assert scan.get("error"), "the scan line says what went wrong"
    return scan


def deliver_ok(p, mta, body=None):
    """A fresh session still delivers (the daemon survived the fault)."""
    body = body or clean_message(subject="after the fault")
    before = len(mta.messages)
    c = start(p)
    assert send_message(c, body).code == 250
    c.cmd("QUIT")
    c.close()
    mta.wait_messages(before + 1)
    assert mta.messages[-1].content == body


# --------------------------------------------------------------------------
# scanner failures
# --------------------------------------------------------------------------

@pytest.mark.parametrize("via", ["unix", "tcp"])
def test_clamd_stopped(proxy, mta, private_clamd, tmp_path, via):
    clamd = private_clamd()
    p = proxy(mta.port, **scanning(tmp_path, clamd.path(via)))
    clamd.stop()
    c = start(p)
    r = send_message(c, harmless_message())
    sid = assert_refused_for_now(p, c, mta, r, "clamd")
    assert p.wait_event("transaction", session=sid)[0].get("scan") == "error"
    error_scan(p, sid)


def test_clamd_answering_garbage(proxy, mta, fake_scanner, tmp_path):
    garbage = fake_scanner("garbage")
    p = proxy(mta.port, **scanning(tmp_path, garbage.addr))
    c = start(p)
    body = harmless_message()
    r = send_message(c, body)
    sid = assert_refused_for_now(p, c, mta, r, "clamd")
    error_scan(p, sid)
    assert garbage.conns == 1
    assert garbage.requests[0].startswith((b"zINSTREAM\0", b"nINSTREAM\n")), garbage.requests[0][:20]


@pytest.mark.parametrize("answer", [
    b"stream: OK",                                          # no terminator, then EOF
    b"stream: " + b"A" * 100_000 + b" FOUND\0",             # oversized name
    b"stream: Evil\x1b[2J\r\n250 2.0.0 Ok FOUND\0",          # a name that tries to be a reply line
    b"stream: \x1b[31mOK\0",
    b"\0",
    b"",
    b"INSTREAM size limit exceeded. ERROR\0",
])
def test_clamd_hostile_answers_never_deliver_unscanned(proxy, mta, fake_scanner, tmp_path, answer):
    fake = fake_scanner("garbage", answer=answer)
    p = proxy(mta.port, **scanning(tmp_path, fake.addr))
    c = start(p)
    r = send_message(c, harmless_message())
    if r.code == 550:
        # a FOUND answer is a verdict: the name in the reply is one bounded, printable line
        assert answer.endswith(b" FOUND\0"), r
        assert len(r.raw) <= 1000 and all(0x20 <= b < 0x7f for b in r.raw[:-2]), r
    else:
        assert not_scanned("clamd").fullmatch(r.text), r
        assert len(r.raw) <= 1000 and all(0x20 <= b < 0x7f for b in r.raw[:-2]), r
    # the next reply belongs to the next command: the session is taken over, nothing else was injected
    assert c.cmd("MAIL FROM:<again@customer.test>").code == 451
    assert mta.messages == []
    assert "\x1b" not in p.log_text()


def message_to_a_silent_scanner(p):
    """A message through ``p`` whose scanner never answers: the session, the reply to the final dot, and
    the seconds it took."""
    c = start(p)
    assert c.cmd("MAIL FROM:<alice@customer.test>").code == 250
    assert c.cmd("RCPT TO:<bob@example.test>").code == 250
    assert c.cmd("DATA").code == 354
    c.send(dot_stuff(harmless_message()))
    t0 = time.monotonic()
    r = c.read_reply(timeout=8)
    return c, r, time.monotonic() - t0


def test_clamd_slower_than_timeout_scanner(proxy, mta, fake_scanner, tmp_path):
    silent = fake_scanner("silent")
    p = proxy(mta.port, **scanning(tmp_path, silent.addr, timeout_scanner=1))
    c, r, elapsed = message_to_a_silent_scanner(p)
    assert 0.8 <= elapsed < 4, f"451 after {elapsed:.2f}s with timeout_scanner 1"
    sid = assert_refused_for_now(p, c, mta, r, "clamd")
    error_scan(p, sid)
    assert silent.conns == 1


def test_a_scan_longer_than_timeout_idle_is_not_cut_short(proxy, mta, fake_scanner, tmp_path):
    """The scanner's own timeout decides, not the idle timer: the client learns the scan failed."""
    silent = fake_scanner("silent")
    p = proxy(mta.port, **scanning(tmp_path, silent.addr, timeout_scanner=2.5, timeout_idle=1))
    c, r, elapsed = message_to_a_silent_scanner(p)
    assert 2.2 <= elapsed < 5, f"reply after {elapsed:.2f}s with timeout_scanner 2.5, timeout_idle 1"
    assert "timed out after 2.5s" in r.text, r.text
    assert_refused_for_now(p, c, mta, r, "clamd")


def test_spamd_down(proxy, mta, closed_port, tmp_path):
    p = proxy(mta.port, antispam_type="spamassassin", antispam_path=f"127.0.0.1:{closed_port}",
              spool_path=str(tmp_path / "spool"), timeout_spam=5)
    c = start(p)
    r = send_message(c, clean_message())
    sid = assert_refused_for_now(p, c, mta, r, "spamd")
    error_scan(p, sid, "spamd")


def test_spamd_answering_garbage(proxy, mta, fake_scanner, tmp_path):
    garbage = fake_scanner("garbage")
    p = proxy(mta.port, antispam_type="spamassassin", antispam_path=garbage.addr,
              spool_path=str(tmp_path / "spool"), timeout_spam=5)
    c = start(p)
    r = send_message(c, clean_message())
    sid = assert_refused_for_now(p, c, mta, r, "spamd")
    error_scan(p, sid, "spamd")


def test_scanner_failure_with_enhanced_codes(proxy, scripted_mta, fake_scanner, tmp_path):
    s = scripted_mta()
    p = proxy(s.port, **scanning(tmp_path, fake_scanner("garbage").addr))
    c = start(p)
    r = send_message(c, harmless_message())
    assert not_scanned("clamd", enhanced=True).fullmatch(r.text), r
    assert s.conns[0].closed.wait(5)
    assert s.conns[0].messages == []


@pytest.mark.parametrize("fault", ["garbage", "stopped"])
def test_ignore_errors_lets_the_message_through(proxy, mta, fake_scanner, closed_port, tmp_path, fault):
    path = fake_scanner("garbage").addr if fault == "garbage" else f"127.0.0.1:{closed_port}"
    p = proxy(mta.port, ignore_errors=True, **scanning(tmp_path, path))
    c = start(p)
    body = harmless_message()
    assert send_message(c, body).raw == b"250 OK queued as Q1\r\n"
    assert c.cmd("QUIT").code == 221
    (m,) = mta.wait_messages(1)
    assert m.content == body
    sid = p.session_id(c.local)
    error_scan(p, sid)
    (txn,) = p.wait_event("transaction", session=sid)
    assert (txn.get("result"), txn.get("scan")) == ("250", "error")


def test_ignore_errors_does_not_let_a_virus_through(proxy, mta, clamd, tmp_path):
    p = proxy(mta.port, ignore_errors=True, **scanning(tmp_path, clamd.unix))
    c = start(p)
    assert send_message(c, eicar_message()).raw == f"550 {PN}: virus found: {clamd.virus}\r\n".encode()
    assert mta.messages == []


# --------------------------------------------------------------------------
# spool failures
# --------------------------------------------------------------------------

def test_spool_directory_unusable(proxy, mta, clamd, tmp_path):
    spool = tmp_path / "spool"
    p = proxy(mta.port, **scanning(tmp_path, clamd.unix, spool_memory=0))
    assert spool.is_dir()
    spool.rmdir()
    spool.write_bytes(b"a regular file where the spool directory was\n")
    c = start(p)
    r = send_message(c, harmless_message())
    assert not re.match(r"5\d\d", r.text), "a failure of ours is never a 5xx"
    assert_refused_for_now(p, c, mta, r, "spool", why="spool_error")
    assert p.alive()
    # the directory is back: the next message goes through
    spool.unlink()
    spool.mkdir()
    deliver_ok(p, mta)


@pytest.mark.parametrize("leave_on,kept", [("error", True), ("never", False), ("virus", False)])
def test_spool_leave_on_after_a_scanner_failure(proxy, mta, fake_scanner, tmp_path, leave_on, kept):
    spool = tmp_path / "spool"
    p = proxy(mta.port, **scanning(tmp_path, fake_scanner("garbage").addr, spool_memory=0,
                                   spool_leave_on=leave_on))
    c = start(p)
    body = harmless_message()
    r = send_message(c, body)
    assert r.code == 451, r
    c.cmd("QUIT")
    p.wait_close(p.session_id(c.local))
    assert_spool(spool, body, kept)


def test_spool_leave_on_default_keeps_the_file_of_a_failed_scan(proxy, mta, fake_scanner, tmp_path):
    spool = tmp_path / "spool"
    p = proxy(mta.port, **scanning(tmp_path, fake_scanner("garbage").addr, spool_memory=0))
    c = start(p)
    body = harmless_message()
    assert send_message(c, body).code == 451
    c.cmd("QUIT")
    p.wait_close(p.session_id(c.local))
    assert_spool(spool, body, kept=True)


# --------------------------------------------------------------------------
# the MTA and the client vanishing
# --------------------------------------------------------------------------

def test_mta_closing_after_the_dot_without_a_reply(proxy, mta_closing_after_dot, clamd, tmp_path):
    m = mta_closing_after_dot
    p = proxy(m.port, **scanning(tmp_path, clamd.unix))
    c = start(p)
    body = harmless_message()
    r = send_message(c, body, timeout=8)
    assert m.dots.is_set(), "a clean message's final dot goes on to the MTA"
    assert m.messages == [dot_stuff(body)[:-3]]
    assert r.code != 250, r
    assert 400 <= r.code < 500, f"the client must retry, not bounce: {r}"
    sid = p.session_id(c.local)
    assert not [t for t in p.session_records(sid) if t.event == "transaction" and t.get("result") == "250"]


def test_client_vanishing_mid_data(proxy, mta, clamd, tmp_path):
    p = proxy(mta.port, **scanning(tmp_path, clamd.unix, spool_memory=0))
    c = start(p)
    assert c.cmd("MAIL FROM:<alice@customer.test>").code == 250
    assert c.cmd("RCPT TO:<bob@example.test>").code == 250
    assert c.cmd("DATA").code == 354
    c.send(harmless_message()[:400])
    c.close()
    sid = p.session_id(c.local)
    close = p.wait_close(sid)
    assert close.get("closed_by") == "client"
    wait_until(lambda: all(conn.closed.is_set() for conn in mta.conns), what="upstream closed")
    assert mta.messages == []
    assert not [t for t in p.session_records(sid) if t.event == "transaction" and t.get("result") == "250"]
    wait_until(lambda: not spool_files(tmp_path / "spool"), 3,
               what="the spool file of the cut-off message removed")
    deliver_ok(p, mta)


def read_all_replies(c, timeout=15):
    """Every reply until the proxy closes the connection (bounded)."""
    replies = []
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"connection still open after {timeout}s; replies so far {replies}"
        try:
            replies.append(c.read_reply(timeout=remaining))
        except ConnectionClosed:
            return replies


def test_three_pipelined_transactions_with_the_middle_one_infected(proxy, mta, clamd, tmp_path):
    p = proxy(mta.port, **scanning(tmp_path, clamd.unix))
    c = start(p)
    first = harmless_message(subject="first") + b".dot-led line\r\n"
    third = b"Subject: third\r\n\r\nthird body\r\n"
    session = b""
    for i, body in enumerate([first, eicar_message(subject="second"), third], 1):
        session += f"MAIL FROM:<sender{i}@customer.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n".encode()
        session += dot_stuff(body)
    c.send(session + b"QUIT\r\n")
    replies = read_all_replies(c)
    codes = [r.code for r in replies]
    assert codes[:8] == [250, 250, 354, 250, 250, 250, 354, 550], replies
    assert replies[7].text == f"550 {PN}: virus found: {clamd.virus}"
    rest = replies[8:]
    assert rest, "the third transaction was answered"
    stored = mta.wait_messages(1)
    assert stored[0].mail_from == "sender1@customer.test"
    assert stored[0].content == first
    if rest[0].code == 250:
        # the proxy went on with a fresh upstream: then the third is delivered in full
        assert [r.code for r in rest[:4]] == [250, 250, 354, 250], rest
        stored = mta.wait_messages(2)
        assert [(m.mail_from, m.content) for m in stored[1:]] == [("sender3@customer.test", third)]
    else:
        assert 400 <= rest[0].code < 500, rest[0]
        assert all(r.code != 250 for r in rest), f"nothing after the takeover may look accepted: {rest}"
        assert rest[-1].code == 221, rest
        p.wait_close(p.session_id(c.local))
        assert len(mta.messages) == 1


# --------------------------------------------------------------------------
# SMTP smuggling
# --------------------------------------------------------------------------

@pytest.mark.parametrize("seq", [b"\n.\n", b"\n.\r\n", b"\r\n.\n", b"\r.\r\n"])
def test_a_smuggled_end_of_data_never_reaches_the_mta(proxy, mta, clamd, tmp_path, seq):
    """A dot next to a bare line end (an early end of DATA for a lenient MTA) gets 550 5.6.0: the MTA never
    sees it, nor the commands smuggled after it, and stores nothing."""
    p = proxy(mta.port, **scanning(tmp_path, clamd.unix))
    c = start(p)
    assert c.cmd("MAIL FROM:<alice@customer.test>").code == 250
    assert c.cmd("RCPT TO:<bob@example.test>").code == 250
    assert c.cmd("DATA").code == 354
    c.send(b"Subject: smuggled\r\n\r\nfirst part" + seq
           + b"MAIL FROM:<forged@bank.test>\r\nRCPT TO:<victim@example.test>\r\nDATA\r\nunscanned\r\n.\r\n")
    r = c.read_reply()
    assert r.text == f"550 {PN}: message refused: a bare CR or LF is followed by a dot"
    assert c.cmd("MAIL FROM:<again@customer.test>").code == 451, "the session is taken over"
    assert c.cmd("QUIT").code == 221
    sid = p.session_id(c.local)
    (txn,) = p.wait_event("transaction", session=sid)
    assert (txn.get("result"), txn.get("why")) == ("aborted", "bare_newline")
    assert mta.conns and mta.conns[0].closed.wait(5)
    raw = mta.raw_all()
    assert b"forged@bank.test" not in raw and seq not in raw
    assert mta.messages == []
    assert p.events("scan", session=sid) == [], "nothing was scanned: the message was refused while it arrived"
