"""Rate limits per real client with the real daemon: ``ratelimit_connections`` refused at connect (421 4.7.0,
the MTA never contacted), messages / mailfrom_rejects at MAIL, recipients / rcptto_rejects at RCPT, bytes at
DATA (451, the session goes on, nothing forwarded), sliding windows that let the client through again,
several windows per kind, ``lock_on ratelimit``, counters that survive a restart (the SQLite state store),
and ``check-config``'s canonical form and its refusal of hostile values.

Clients connect from 127.0.0.1 in mode fixed, so the peer is the real client and the key is 127.0.0.1.
The aiosmtpd MTA does not advertise ENHANCEDSTATUSCODES, so replies after EHLO carry no enhanced code;
the connect-time reply (before any EHLO) does.

The counters are two fixed buckets aligned to multiples of the window length since the epoch. A test that
expects an exact count must not straddle a bucket boundary (the previous bucket is weighted down at once),
so such tests first wait, bounded, for a fresh bucket when too little of the current one is left
(``fresh_bucket``).
"""

import base64
import re
import subprocess
import time

import pytest

from conftest import PROXY_NAME, SMTPGATE_BIN, ConnectionClosed, free_port, start, wait_until

PN = PROXY_NAME
LOCKED = re.compile(rf"554 5\.7\.1 {PN}: your address is locked \(ratelimit\) until (\d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d) UTC$")


def rl_opts(tmp_path, **kw):
    opts = dict(state_store=f"sqlite:{tmp_path}/state/state.db", control_path=f"{tmp_path}/control.sock")
    opts.update(kw)
    return opts


def fresh_bucket(seconds, need):
    """Returns when at least ``need`` seconds are left in the current ``seconds``-long bucket (waits for the
    next one, at most ``need`` seconds, otherwise)."""
    assert need < seconds
    left = seconds - (time.time() % seconds)
    if left < need:
        time.sleep(left + 0.05)


def limited(kind, count, seconds, limit):
    return (f"{PN}: rate limit reached, try again later "
            f"({count} {kind} in {seconds} s, ratelimit_{kind} {limit}/{seconds})")


def reply_451(kind, count, seconds, limit):
    return f"451 {limited(kind, count, seconds, limit)}"


def message(subject="hello", size=0):
    """A small message (headers, blank line, body), CRLF line ends, ``size`` extra bytes of body."""
    body = b"Subject: " + subject.encode() + b"\r\nFrom: alice@customer.test\r\nTo: bob@example.test\r\n\r\nHi Bob.\r\n"
    while size > 0:
        line = b"x" * min(size, 70) + b"\r\n"
        body += line
        size -= len(line)
    return body


def transaction(c, subject="hello", rcpts=("bob@example.test",), size=0):
    """MAIL, RCPTs, DATA in lock step; returns the reply to the final dot."""
    r = c.cmd("MAIL FROM:<alice@customer.test>")
    assert r.code == 250, r
    for rcpt in rcpts:
        r = c.cmd(f"RCPT TO:<{rcpt}>")
        assert r.code == 250, r
    r = c.cmd("DATA")
    assert r.code == 354, r
    c.send(message(subject, size) + b".\r\n")
    return c.read_reply()


def quit_(c):
    assert c.cmd("QUIT").code == 221
    c.wait_closed()
    c.close()


def try_session(p):
    """A connection's first reply: the Client when it is 220 (admitted), else the refusal's Reply."""
    c = p.connect()
    try:
        r = c.read_reply()
    except ConnectionClosed:
        c.close()
        raise
    if r.code == 220:
        return c
    c.wait_closed()
    c.close()
    return r


def mail_commands(mta):
    return re.findall(rb"(?im)^MAIL FROM:", mta.raw_all())


def rcpt_lines(mta):
    return re.findall(rb"(?im)^RCPT TO:<([^>]*)>", mta.raw_all())


# --------------------------------------------------------------------------
# connections, at connect
# --------------------------------------------------------------------------

def test_connections_over_the_limit_are_refused_at_connect_before_any_upstream_connection(proxy, mta, tmp_path):
    fresh_bucket(60, 10)
    p = proxy(mta.port, **rl_opts(tmp_path, ratelimit_connections="2/60"))
    for i in range(2):
        c = start(p)
        assert transaction(c, subject=f"s{i}").code == 250
        quit_(c)
    mta.wait_messages(2)
    wait_until(lambda: len(mta.conns) == 2, 5, what="two upstream connections")
    c = p.connect()
    line = c.read_line()
    assert line == (f"421 4.7.0 {limited('connections', 2, 60, 2)}\r\n").encode(), line
    assert c.wait_closed() == b"", "nothing after the refusal, then the close"
    c.close()
    (rej,) = p.wait_event("reject", client=c.local)
    assert (rej.get("listener"), rej.get("reason"), rej.get("kind"), rej.get("count"), rej.get("limit"),
            rej.get("window")) == ("main", "ratelimit", "connections", "2", "2", "60"), rej
    assert rej.get("session")
    (close,) = p.wait_event("close", session=rej.get("session"))
    assert (close.get("closed_by"), close.get("reason"), close.get("bytes_in"), close.get("trans")) == \
        ("proxy", "ratelimit", "0", "0"), close
    time.sleep(0.3)
    assert len(mta.conns) == 2, "the refused client must not cause an upstream connection"
    assert len(mta.messages) == 2


def test_a_refused_connection_is_not_counted(proxy, mta, tmp_path):
    """Refusals do not count: with 1/60 the count named stays 1 however often the client retries."""
    fresh_bucket(60, 10)
    p = proxy(mta.port, **rl_opts(tmp_path, ratelimit_connections="1/60"))
    quit_(start(p))
    for _ in range(4):
        r = try_session(p)
        assert not hasattr(r, "sock"), "admitted over the limit"
        assert r.text == f"421 4.7.0 {limited('connections', 1, 60, 1)}", r
    rejs = p.wait_event("reject", count=4, reason="ratelimit")
    assert [r.get("count") for r in rejs] == ["1"] * 4
    assert len(mta.conns) == 1


# --------------------------------------------------------------------------
# messages, recipients, rejects, bytes: at commands
# --------------------------------------------------------------------------

def test_messages_over_the_limit_are_refused_at_mail_and_the_session_goes_on(proxy, mta, tmp_path):
    fresh_bucket(60, 10)
    p = proxy(mta.port, **rl_opts(tmp_path, ratelimit_messages="2/60"))
    c = start(p)
    sid = p.session_id(c.local)
    assert transaction(c, subject="one").code == 250
    assert transaction(c, subject="two").code == 250
    mta.wait_messages(2)
    r = c.cmd("MAIL FROM:<alice@customer.test>")
    assert r.raw == (reply_451("messages", 2, 60, 2) + "\r\n").encode(), r
    (rl,) = p.wait_event("ratelimit", session=sid)
    assert (rl.get("client"), rl.get("key"), rl.get("kind"), rl.get("count"), rl.get("limit"),
            rl.get("window")) == (c.local, "127.0.0.1", "messages", "2", "2", "60"), rl
    # the session goes on
    assert c.cmd("RSET").code == 250
    assert c.cmd("NOOP").code == 250
    r = c.cmd("MAIL FROM:<alice@customer.test>")
    assert r.code == 451 and "ratelimit_messages 2/60" in r.text, "still limited, still not counted"
    quit_(c)
    time.sleep(0.3)
    assert len(mta.messages) == 2, mta.messages
    assert len(mail_commands(mta)) == 2, "a refused MAIL is not forwarded"
    assert [m.content.split(b"\r\n")[0] for m in mta.messages] == [b"Subject: one", b"Subject: two"]
    assert len(p.events("ratelimit", session=sid)) == 2


def test_the_limit_counts_messages_across_sessions(proxy, mta, tmp_path):
    fresh_bucket(60, 10)
    p = proxy(mta.port, **rl_opts(tmp_path, ratelimit_messages="2/60"))
    for i in range(2):
        c = start(p)
        assert transaction(c, subject=f"s{i}").code == 250
        quit_(c)
    c = start(p)
    r = c.cmd("MAIL FROM:<alice@customer.test>")
    assert r.text == reply_451("messages", 2, 60, 2), r
    quit_(c)
    assert len(mta.messages) == 2


def test_a_pipelined_transaction_refused_at_mail_sends_nothing(proxy, mta, tmp_path):
    """MAIL, RCPT and DATA in one write after the limit: MAIL gets 451, RCPT and DATA fail (no transaction),
    no message reaches the MTA and the session is still usable."""
    fresh_bucket(60, 10)
    p = proxy(mta.port, **rl_opts(tmp_path, ratelimit_messages="1/60"))
    c = start(p)
    assert transaction(c, subject="first").code == 250
    mta.wait_messages(1)
    c.send("MAIL FROM:<alice@customer.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n")
    mail, rcpt, data = c.read_replies(3)
    assert mail.text == reply_451("messages", 1, 60, 1), mail
    assert rcpt.code >= 500 and data.code >= 500, (rcpt, data)
    assert c.cmd("RSET").code == 250
    assert c.cmd("NOOP").code == 250
    quit_(c)
    time.sleep(0.3)
    assert len(mta.messages) == 1
    assert len(mail_commands(mta)) == 1


def test_pipelined_recipients_over_the_limit_are_refused_in_order(proxy, mta, tmp_path):
    fresh_bucket(60, 10)
    p = proxy(mta.port, **rl_opts(tmp_path, ratelimit_recipients="3/60"))
    c = p.connect()
    assert c.greeting().code == 220
    ehlo = c.cmd("EHLO client.test")
    assert ehlo.code == 250 and any(l[4:].upper() == "PIPELINING" for l in ehlo.lines), ehlo
    rcpts = [f"r{i}@example.test" for i in range(1, 6)]
    c.send("MAIL FROM:<alice@customer.test>\r\n" + "".join(f"RCPT TO:<{r}>\r\n" for r in rcpts))
    replies = c.read_replies(6)
    assert [r.code for r in replies] == [250, 250, 250, 250, 451, 451], replies
    assert replies[4].text == reply_451("recipients", 3, 60, 3), replies[4]
    assert replies[5].text == reply_451("recipients", 3, 60, 3), "a refused recipient is not counted"
    assert c.cmd("DATA").code == 354
    c.send(message("three of five") + b".\r\n")
    assert c.read_reply().code == 250
    (m,) = mta.wait_messages(1)
    assert m.rcpt_tos == rcpts[:3], m
    assert rcpt_lines(mta) == [r.encode() for r in rcpts[:3]], "refused RCPTs are not forwarded"
    sid = p.session_id(c.local)
    evs = p.wait_event("ratelimit", session=sid, count=2)
    assert [(e.get("kind"), e.get("count"), e.get("limit"), e.get("window")) for e in evs] == \
        [("recipients", "3", "3", "60")] * 2
    # the next transaction: no recipient left at all
    assert c.cmd("MAIL FROM:<alice@customer.test>").code == 250
    r = c.cmd("RCPT TO:<r6@example.test>")
    assert r.text == reply_451("recipients", 3, 60, 3), r
    assert c.cmd("RSET").code == 250
    quit_(c)


def test_rcpt_rejects_over_the_limit_are_refused_at_rcpt(proxy, mta, tmp_path):
    fresh_bucket(60, 10)
    p = proxy(mta.port, **rl_opts(tmp_path, ratelimit_rcptto_rejects="1/60"))
    c = start(p)
    assert c.cmd("MAIL FROM:<alice@customer.test>").code == 250
    r = c.cmd("RCPT TO:<reject@example.test>")
    assert r.code == 550 and "recipient rejected" in r.text, "the MTA's own refusal"
    r = c.cmd("RCPT TO:<bob@example.test>")
    assert r.text == reply_451("rcptto_rejects", 1, 60, 1), r
    (rl,) = p.wait_event("ratelimit", kind="rcptto_rejects")
    assert (rl.get("client"), rl.get("key"), rl.get("count"), rl.get("limit"), rl.get("window")) == \
        (c.local, "127.0.0.1", "1", "1", "60"), rl
    assert c.cmd("RSET").code == 250
    quit_(c)
    time.sleep(0.3)
    assert rcpt_lines(mta) == [b"reject@example.test"], "the refused RCPT is not forwarded"


def test_rcpt_rejects_are_checked_only_at_rcpt(proxy, mta, tmp_path):
    """Recipients the MTA refuses do not stop the client from sending a message with good ones until the
    limit is reached; then MAIL still passes (it is not a MAIL-time kind)."""
    fresh_bucket(60, 10)
    p = proxy(mta.port, **rl_opts(tmp_path, ratelimit_rcptto_rejects="2/60"))
    c = start(p)
    assert c.cmd("MAIL FROM:<alice@customer.test>").code == 250
    assert c.cmd("RCPT TO:<reject1@example.test>").code == 550
    assert c.cmd("RCPT TO:<bob@example.test>").code == 250
    assert c.cmd("RCPT TO:<reject2@example.test>").code == 550
    assert c.cmd("RCPT TO:<carol@example.test>").text == reply_451("rcptto_rejects", 2, 60, 2)
    assert c.cmd("DATA").code == 354
    c.send(message("to bob") + b".\r\n")
    assert c.read_reply().code == 250
    (m,) = mta.wait_messages(1)
    assert m.rcpt_tos == ["bob@example.test"]
    assert c.cmd("MAIL FROM:<alice@customer.test>").code == 250, "not a MAIL-time limit"
    quit_(c)


def test_mail_rejects_over_the_limit_are_refused_at_mail(proxy, mta, tmp_path):
    """aiosmtpd refuses a MAIL parameter it does not know (555): that is a MAIL the MTA answered >= 400."""
    fresh_bucket(60, 10)
    p = proxy(mta.port, **rl_opts(tmp_path, ratelimit_mailfrom_rejects="1/60"))
    c = start(p)
    r = c.cmd("MAIL FROM:<alice@customer.test> XBOGUS=1")
    assert r.code >= 500, r
    r = c.cmd("MAIL FROM:<alice@customer.test>")
    assert r.text == reply_451("mailfrom_rejects", 1, 60, 1), r
    (rl,) = p.wait_event("ratelimit", kind="mailfrom_rejects")
    assert (rl.get("key"), rl.get("count"), rl.get("limit"), rl.get("window")) == ("127.0.0.1", "1", "1", "60")
    quit_(c)
    time.sleep(0.3)
    assert len(mail_commands(mta)) == 1, "the refused MAIL is not forwarded"


def test_bytes_over_the_limit_are_refused_at_data(proxy, mta, tmp_path):
    fresh_bucket(60, 10)
    p = proxy(mta.port, **rl_opts(tmp_path, ratelimit_bytes="1000/60"))
    c = start(p)
    sid = p.session_id(c.local)
    assert transaction(c, subject="big", size=2000).code == 250
    quit_(c)
    close = p.wait_close(sid)
    sent = int(close.get("bytes_in"))
    assert sent == c.sent and sent > 2000, (sent, c.sent)
    c = start(p)
    assert c.cmd("MAIL FROM:<alice@customer.test>").code == 250
    assert c.cmd("RCPT TO:<bob@example.test>").code == 250
    r = c.cmd("DATA")
    assert r.text == reply_451("bytes", sent, 60, 1000), r
    (rl,) = p.wait_event("ratelimit", kind="bytes")
    assert (rl.get("count"), rl.get("limit"), rl.get("window")) == (str(sent), "1000", "60"), rl
    # the transaction is still open: no DATA reached the MTA, the envelope can be reset
    assert c.cmd("RSET").code == 250
    quit_(c)
    time.sleep(0.3)
    assert len(mta.messages) == 1
    assert len(re.findall(rb"(?im)^DATA\r\n", mta.raw_all())) == 1, "the refused DATA is not forwarded"


def test_auth_rejects_over_the_limit_are_refused_at_mail(proxy, mta, tmp_path):
    fresh_bucket(60, 10)
    p = proxy(mta.port, **rl_opts(tmp_path, ratelimit_auth_rejects="1/60"))
    c = p.connect()
    assert c.greeting().code == 220
    ehlo = c.cmd("EHLO client.test")
    assert any(l[4:].upper().startswith("AUTH") for l in ehlo.lines), ehlo
    bad = base64.b64encode(b"\0testuser\0wrong-password").decode()
    r = c.cmd(f"AUTH PLAIN {bad}")
    assert r.code == 535, r
    r = c.cmd("MAIL FROM:<alice@customer.test>")
    assert r.text == reply_451("auth_rejects", 1, 60, 1), r
    (rl,) = p.wait_event("ratelimit", kind="auth_rejects")
    assert (rl.get("key"), rl.get("count"), rl.get("limit"), rl.get("window")) == ("127.0.0.1", "1", "1", "60")
    quit_(c)
    time.sleep(0.3)
    assert len(mail_commands(mta)) == 0, "the refused MAIL is not forwarded"


def test_an_mta_with_enhanced_status_codes_gets_the_enhanced_code_in_the_refusal(proxy, scripted_mta, tmp_path):
    smta = scripted_mta()
    fresh_bucket(60, 10)
    p = proxy(smta.port, **rl_opts(tmp_path, ratelimit_messages="1/60"))
    c = start(p)
    assert transaction(c).code == 250
    r = c.cmd("MAIL FROM:<alice@customer.test>")
    assert r.text == f"451 4.7.1 {limited('messages', 1, 60, 1)}", r
    quit_(c)
    conn = smta.wait_conns(1)
    wait_until(lambda: conn.closed.is_set(), 5, what="the upstream session to end")
    assert [l for l in conn.lines if l.upper().startswith("MAIL")] == ["MAIL FROM:<alice@customer.test>"]


def test_repeated_connections_to_the_same_destination_count_as_one_destination(proxy, mta, tmp_path):
    """``ratelimit_destinations`` counts distinct destinations: in mode fixed there is one, so a limit of 1
    is never exceeded by connecting to it again."""
    fresh_bucket(60, 10)
    p = proxy(mta.port, **rl_opts(tmp_path, ratelimit_destinations="1/60"))
    for i in range(3):
        r = try_session(p)
        assert hasattr(r, "sock"), f"connection {i + 1} to the only destination refused: {r}"
        assert r.cmd("EHLO client.test").code == 250
        quit_(r)
    assert p.events("reject") == []


def test_destinations_limit_of_two_with_one_destination(proxy, mta, tmp_path):
    fresh_bucket(60, 10)
    p = proxy(mta.port, **rl_opts(tmp_path, ratelimit_destinations="2/60"))
    for i in range(3):
        c = start(p)
        assert transaction(c, subject=f"d{i}").code == 250
        quit_(c)
    assert len(mta.messages) == 3
    assert p.events("reject") == []


# --------------------------------------------------------------------------
# sliding windows
# --------------------------------------------------------------------------

def test_a_refused_client_is_admitted_again_as_the_window_slides(proxy, mta, tmp_path):
    p = proxy(mta.port, **rl_opts(tmp_path, ratelimit_connections="1/2"))
    fresh_bucket(2, 1.2)
    quit_(start(p))
    t0 = time.monotonic()
    r = try_session(p)
    assert not hasattr(r, "sock"), "a second connection right after the first must be refused"
    assert r.text == f"421 4.7.0 {limited('connections', 1, 2, 1)}", r

    def admitted():
        got = try_session(p)
        if hasattr(got, "sock"):
            return got
        assert got.code == 421, got
        time.sleep(0.1)
        return None

    c = wait_until(admitted, timeout=6, what="admission once the 2 s window slid")
    assert time.monotonic() - t0 < 6
    assert c.cmd("EHLO again.test").code == 250
    assert transaction(c).code == 250
    quit_(c)
    assert len(mta.conns) == 2


def test_several_windows_each_hold_and_the_short_one_slides(proxy, mta, tmp_path):
    fresh_bucket(60, 14)   # the whole test in one 60 s bucket (the 3 s buckets divide it)
    fresh_bucket(3, 2)
    p = proxy(mta.port, **rl_opts(tmp_path, ratelimit_messages="5/60 2/3"))
    c = start(p)
    assert transaction(c, subject="m1").code == 250
    assert transaction(c, subject="m2").code == 250
    r = c.cmd("MAIL FROM:<alice@customer.test>")
    assert r.text == reply_451("messages", 2, 3, 2), "the short window trips, and is the one named"

    # Keep trying: messages go through as the 3 s window slides until the 60 s one holds 5.
    seen = []

    def long_window_full():
        r = c.cmd("MAIL FROM:<alice@customer.test>")
        if r.code == 250:
            assert c.cmd("RCPT TO:<bob@example.test>").code == 250
            assert c.cmd("DATA").code == 354
            c.send(message(f"m{len(mta.messages) + 1}") + b".\r\n")
            assert c.read_reply().code == 250
            seen.append("sent")
            return None
        assert r.code == 451, r
        if "ratelimit_messages 5/60" in r.text:
            return r
        assert r.text.startswith("451 " + PN + ": rate limit reached, try again later (") \
            and r.text.endswith(", ratelimit_messages 2/3)"), r
        seen.append("short")
        time.sleep(0.2)
        return None

    r = wait_until(long_window_full, timeout=16, interval=0, what=lambda: f"the 5/60 window to trip ({seen})")
    assert r.text == reply_451("messages", 5, 60, 5), r
    assert "sent" in seen, "the short window let a message through again once it slid"
    assert len(mta.messages) == 5, mta.messages
    quit_(c)


# --------------------------------------------------------------------------
# lock_on ratelimit
# --------------------------------------------------------------------------

def test_lock_on_ratelimit_locks_the_client_and_the_next_connection_is_refused(proxy, mta, tmp_path):
    fresh_bucket(60, 10)
    p = proxy(mta.port, **rl_opts(tmp_path, ratelimit_messages="1/60", lock_on="ratelimit", lock_duration=600))
    c = start(p)
    sid = p.session_id(c.local)
    assert transaction(c).code == 250
    r = c.cmd("MAIL FROM:<alice@customer.test>")
    assert r.text == reply_451("messages", 1, 60, 1), r
    (lock,) = p.wait_event("lock", session=sid)
    assert (lock.get("key"), lock.get("lock_cause")) == ("127.0.0.1", "ratelimit"), lock
    assert lock.get("reason") == "ratelimit_messages 1/60 reached", lock
    assert lock.get("source"), lock
    assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", lock.get("lock_until")), lock
    quit_(c)
    conns = len(mta.conns)
    c = p.connect()
    r = c.read_reply()
    m = LOCKED.match(r.text)
    assert m, r
    until = time.mktime(time.strptime(m.group(1), "%Y-%m-%d %H:%M:%S")) - time.timezone
    assert 590 < until - time.time() < 610, "the reply says when the lock ends"
    c.wait_closed()
    c.close()
    (rej,) = p.wait_event("reject", reason="locked")
    assert rej.get("lock_cause") == "ratelimit", rej
    time.sleep(0.3)
    assert len(mta.conns) == conns, "a locked client must not reach the MTA"


def test_lock_on_ratelimit_at_connect(proxy, mta, tmp_path):
    fresh_bucket(60, 10)
    p = proxy(mta.port, **rl_opts(tmp_path, ratelimit_connections="1/60", lock_on="ratelimit", lock_duration=600))
    quit_(start(p))
    r = try_session(p)
    assert r.text == f"421 4.7.0 {limited('connections', 1, 60, 1)}", r
    (lock,) = p.wait_event("lock")
    assert (lock.get("key"), lock.get("lock_cause"), lock.get("reason")) == \
        ("127.0.0.1", "ratelimit", "ratelimit_connections 1/60 reached"), lock
    r = try_session(p)
    assert LOCKED.match(r.text), r
    assert len(mta.conns) == 1


def test_without_lock_on_ratelimit_a_limit_locks_nobody(proxy, mta, tmp_path):
    fresh_bucket(60, 10)
    p = proxy(mta.port, **rl_opts(tmp_path, ratelimit_messages="1/60", lock_on="virus"))
    c = start(p)
    assert transaction(c).code == 250
    assert c.cmd("MAIL FROM:<alice@customer.test>").code == 451
    quit_(c)
    c = start(p)
    assert c.cmd("NOOP").code == 250
    quit_(c)
    assert p.events("lock") == []


# --------------------------------------------------------------------------
# restart
# --------------------------------------------------------------------------

def test_a_restart_keeps_the_counters(proxy, mta, tmp_path):
    fresh_bucket(3600, 60)
    opts = rl_opts(tmp_path, ratelimit_messages="2/3600")
    p = proxy(mta.port, **opts)
    c = start(p)
    assert transaction(c, subject="one").code == 250
    assert transaction(c, subject="two").code == 250
    quit_(c)
    p.expect_exit = True
    assert p.stop() == 0
    q = proxy(mta.port, **opts)
    (loaded,) = q.wait_event("state_store", result="loaded")
    assert loaded.get("clients") == "1", loaded
    c = start(q)
    r = c.cmd("MAIL FROM:<alice@customer.test>")
    assert r.text == reply_451("messages", 2, 3600, 2), r
    quit_(c)
    assert len(mta.messages) == 2


# --------------------------------------------------------------------------
# check-config
# --------------------------------------------------------------------------

BASE_CONFIG = "mode fixed\nfixed_server 127.0.0.1\n"


def check_config(tmp_path, text, name="rl.conf"):
    path = tmp_path / name
    path.write_text(BASE_CONFIG + text)
    r = subprocess.run([SMTPGATE_BIN, "check-config", str(path)], capture_output=True, timeout=20,
                       stdin=subprocess.DEVNULL)
    return path, r


def printed(out, option):
    lines = [l for l in out.decode().splitlines() if l.split(" ", 1)[0] == option]
    assert len(lines) == 1, lines
    return lines[0].split(" ", 1)[1]


@pytest.mark.parametrize("value, canonical", [
    ("10/60 150/1d", "10/1m 150/1d"),
    ("150/1d 10/60", "10/1m 150/1d"),
    ("10/60s 150/86400", "10/1m 150/1d"),
    ("3/90 7/7200", "3/90 7/2h"),
    ("1/2H 3/90", "3/90 1/2h"),
    ("0", "0"),
    ("1/1 2/2d", "1/1 2/2d"),
    ("5", "5/1h"),
])
def test_check_config_prints_a_canonical_form_that_round_trips(tmp_path, value, canonical):
    _, r = check_config(tmp_path, f"ratelimit_messages {value}\n")
    assert r.returncode == 0, r.stderr
    shown = printed(r.stdout, "ratelimit_messages")
    assert shown == canonical
    _, again = check_config(tmp_path, f"ratelimit_messages {shown}\n", name="again.conf")
    assert again.returncode == 0, again.stderr
    assert printed(again.stdout, "ratelimit_messages") == shown, "the printed form reads back as itself"


def test_check_config_default_window_is_ratelimit_expiration(tmp_path):
    _, r = check_config(tmp_path, "ratelimit_expiration 60\nratelimit_recipients 7\n")
    assert r.returncode == 0, r.stderr
    assert printed(r.stdout, "ratelimit_recipients") == "7/1m"


@pytest.mark.parametrize("value", [
    "10/0",
    "-1",
    "1/99999999d",
    "1/9999999999999d",
    "99999999999999999999",
    "1000000000001/1",
    "18446744073709551617/60",
    "1/18446744073709551617",
    "10/",
    "/60",
    "10/60/60",
    "10/1w",
    "10/-5",
    "+10/60",
    "10/1m 5/60",
    "1/1 2/2 3/3 4/4 5/5",
    "0 10/60",
    "1/32d",
    "ten",
])
def test_check_config_refuses_a_hostile_value_naming_file_and_line(tmp_path, value):
    path, r = check_config(tmp_path, f"ratelimit_messages {value}\n")
    assert r.returncode == 1, (value, r.stdout[-300:], r.stderr)
    err = r.stderr.decode()
    assert err.startswith(f"{path}:3: option 'ratelimit_messages': "), err
    assert len(err) < 2000, "the message stays short"


def test_check_config_refuses_an_overlong_value(tmp_path):
    path, r = check_config(tmp_path, "ratelimit_bytes " + "9" * 5000 + "/60\n")
    assert r.returncode == 1, r.stderr
    err = r.stderr.decode()
    assert err.startswith(f"{path}:3: option 'ratelimit_bytes': "), err
    assert len(err) < 2000, "a huge value is not echoed whole"


def test_the_daemon_refuses_to_start_with_a_hostile_value(tmp_path, mta):
    path = tmp_path / "bad.conf"
    path.write_text(BASE_CONFIG + f"fixed_server_port {mta.port}\nbind_address 127.0.0.1\nport {free_port()}\n"
                    + rl_text(tmp_path) + "ratelimit_connections 5/0\n")
    r = subprocess.run([SMTPGATE_BIN, "run", "--config", str(path), "--log-file", str(tmp_path / "bad.log")],
                       capture_output=True, timeout=20, stdin=subprocess.DEVNULL)
    assert r.returncode != 0
    assert f"{path}:" in r.stderr.decode() + r.stdout.decode() and "ratelimit_connections" in r.stderr.decode(), r


def rl_text(tmp_path):
    return "".join(f"{k} {v}\n" for k, v in rl_opts(tmp_path).items())


def test_ratelimit_override_gives_a_business_customer_its_own_limit(proxy, mta, tmp_path):
    """The configured limit is 1 message an hour; the override file lets 127.0.0.0/8 send 3."""
    over = tmp_path / "override.txt"
    over.write_text("# business customers\n127.0.0.0/8 messages 3/1h\n")
    p = proxy(mta.port, ratelimit_messages="1/1h", ratelimit_override=f"cidr:{over}",
              state_store=f"sqlite:{tmp_path}/state/state.db", control_path=f"{tmp_path}/control.sock")
    c = start(p)
    for i in range(3):
        assert transaction(c, subject=f"business {i}").code == 250, f"message {i + 1} is within the override"
    r = c.cmd("MAIL FROM:<alice@customer.test>")
    assert r.code == 451 and "ratelimit_messages 3/3600" in r.text, r
    assert len(mta.messages) == 3


def test_a_bad_override_file_is_a_config_error_naming_its_line(tmp_path):
    over = tmp_path / "override.txt"
    over.write_text("127.0.0.0/8 messages 3/1h\n10.0.0.0/8 messages 5/10m\n")
    conf = tmp_path / "c.conf"
    conf.write_text(f"mode fixed\nfixed_server 127.0.0.1\nratelimit_messages 1/1h\nratelimit_override cidr:{over}\n")
    r = subprocess.run([SMTPGATE_BIN, "check-config", str(conf)], capture_output=True, text=True, timeout=20)
    assert r.returncode == 1 and f"{over}:2: ratelimit_messages has no 600 s window" in r.stderr, r.stderr
