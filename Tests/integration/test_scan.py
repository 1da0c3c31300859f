"""Content scanning with the real daemons: clamd (EICAR, unix socket and TCP) and spamd (GTUBE), both at
once, scan_max_size / spam_max_size, the spool (file, mode, un-stuffed bytes, spool_leave_on), the NAT
header and the action script.  Each test checks what a user sees: the reply to the final dot, the bytes the
MTA stored, the scan/transaction log lines, files left on disk.

The final dot is held until the scanners answered: a clean message is stored byte-identical, a rejected
one is cut off upstream (aiosmtpd stores nothing) and the session is taken over (MAIL 451, QUIT 221).
"""

import re
import stat
import subprocess
import time

import pytest

from conftest import PROXY_NAME, SMTPGATE_BIN, start, wait_until
from scanners import (EICAR, GTUBE, clean_message, dot_stuff, eicar_message, gtube_message, harmless_message,
                      assert_spool, mime_message, send_message, spool_files)

PN = PROXY_NAME
SPAM_REPLY = re.compile(rf"550 {PN}: message looks like spam \(score (\d+\.\d+), spam_threshold 7\.0\)")


def clamd_opts(tmp_path, clamd, via="unix", **kw):
    opts = dict(antivirus_type="clamd", antivirus_path=clamd.path(via), spool_path=str(tmp_path / "spool"),
                timeout_scanner=5)
    opts.update(kw)
    return opts


def spamd_opts(tmp_path, spamd, **kw):
    opts = dict(antispam_type="spamassassin", antispam_path=spamd.addr, spool_path=str(tmp_path / "spool"),
                timeout_spam=20, spam_threshold="7.0")
    opts.update(kw)
    return opts


def assert_taken_over(c):
    """After a rejected message the proxy owns the session: no new transaction, a clean goodbye."""
    assert c.cmd("MAIL FROM:<again@customer.test>").code == 451
    assert c.cmd("QUIT").code == 221


def assert_cut_off(mta):
    """The MTA saw the message but never its final dot, and lost the connection."""
    assert mta.conns and mta.conns[0].closed.wait(5), "the upstream connection was closed"
    assert b"\r\n.\r\n" not in mta.raw_all(), "the MTA must never see the final dot of a rejected message"
    assert mta.messages == []


def scan_line(p, sid, scanner):
    (rec,) = p.wait_event("scan", session=sid, scanner=scanner)
    assert float(rec.get("time")) >= 0
    return rec


def transaction_line(p, sid):
    (rec,) = p.wait_event("transaction", session=sid)
    return rec


def stored(mta, body, mail_from="alice@customer.test", rcpts=("bob@example.test",)):
    (m,) = mta.wait_messages(1)
    assert m.mail_from == mail_from
    assert m.rcpt_tos == list(rcpts)
    assert m.content == body, "the MTA stores the message byte for byte"
    return m


# --------------------------------------------------------------------------
# clamd
# --------------------------------------------------------------------------

@pytest.mark.parametrize("via", ["unix", "tcp"])
def test_eicar_attachment_is_rejected_and_the_mta_stores_nothing(proxy, mta, clamd, tmp_path, via):
    p = proxy(mta.port, **clamd_opts(tmp_path, clamd, via))
    c = start(p)
    body = eicar_message()
    r = send_message(c, body)
    # aiosmtpd does not offer ENHANCEDSTATUSCODES: no 5.7.1 in the reply
    assert r.raw == f"550 {PN}: virus found: {clamd.virus}\r\n".encode()
    assert_taken_over(c)
    sid = p.session_id(c.local)
    scan = scan_line(p, sid, "clamd")
    assert (scan.get("result"), scan.get("virus"), scan.get("trans")) == ("virus", clamd.virus, "1")
    assert int(scan.get("size")) == len(body)
    txn = transaction_line(p, sid)
    assert (txn.get("result"), txn.get("why"), txn.get("scan")) == ("aborted", "virus", "virus")
    assert_cut_off(mta)


@pytest.mark.parametrize("via", ["unix", "tcp"])
def test_same_message_with_a_harmless_attachment_is_stored_byte_identical(proxy, mta, clamd, tmp_path, via):
    p = proxy(mta.port, **clamd_opts(tmp_path, clamd, via))
    c = start(p)
    body = harmless_message()
    r = send_message(c, body)
    assert r.raw == b"250 OK queued as Q1\r\n", "the client gets the MTA's own reply"
    assert c.cmd("QUIT").code == 221
    stored(mta, body)
    sid = p.session_id(c.local)
    scan = scan_line(p, sid, "clamd")
    assert (scan.get("result"), scan.get("trans"), scan.get("virus")) == ("clean", "1", None)
    assert int(scan.get("size")) == len(body)
    txn = transaction_line(p, sid)
    assert (txn.get("result"), txn.get("scan")) == ("250", "clean")


def test_virus_reply_carries_5_7_1_when_the_mta_offers_enhanced_codes(proxy, scripted_mta, clamd, tmp_path):
    s = scripted_mta()
    p = proxy(s.port, **clamd_opts(tmp_path, clamd))
    c = start(p)
    r = send_message(c, eicar_message())
    assert r.raw == f"550 5.7.1 {PN}: virus found: {clamd.virus}\r\n".encode()
    r = c.cmd("MAIL FROM:<again@customer.test>")
    assert r.code == 451 and re.match(r"451 4\.\d\.\d ", r.text), r
    assert c.cmd("QUIT").code == 221
    assert s.conns[0].closed.wait(5)
    assert s.conns[0].messages == []


def test_two_clean_messages_then_a_virus_in_one_session(proxy, mta, clamd, tmp_path):
    p = proxy(mta.port, **clamd_opts(tmp_path, clamd))
    c = start(p)
    first, second = harmless_message(subject="one"), clean_message(subject="two")
    assert send_message(c, first).code == 250
    assert send_message(c, second).code == 250
    assert send_message(c, eicar_message()).raw == f"550 {PN}: virus found: {clamd.virus}\r\n".encode()
    assert_taken_over(c)
    assert [m.content for m in mta.wait_messages(2)] == [first, second]
    sid = p.session_id(c.local)
    scans = p.wait_event("scan", session=sid, count=3)
    assert [(s.get("trans"), s.get("result")) for s in scans] == [("1", "clean"), ("2", "clean"), ("3", "virus")]


# --------------------------------------------------------------------------
# spamd
# --------------------------------------------------------------------------

def test_gtube_is_rejected_with_spam_action_reject(proxy, mta, spamd, tmp_path):
    p = proxy(mta.port, **spamd_opts(tmp_path, spamd, spam_action="reject"))
    c = start(p)
    body = gtube_message()
    r = send_message(c, body, timeout=25)
    m = SPAM_REPLY.fullmatch(r.text)
    assert m, r
    assert float(m.group(1)) == pytest.approx(spamd.check(body)[0], abs=0.05)
    assert float(m.group(1)) >= 1000
    assert_taken_over(c)
    sid = p.session_id(c.local)
    scan = scan_line(p, sid, "spamd")
    assert scan.get("result") == "spam"
    assert float(scan.get("score")) == float(m.group(1))
    assert float(scan.get("threshold")) == 7.0
    assert int(scan.get("size")) == len(body)
    txn = transaction_line(p, sid)
    assert (txn.get("result"), txn.get("why"), txn.get("scan")) == ("aborted", "spam", "spam")
    assert_cut_off(mta)


def test_gtube_is_delivered_and_logged_with_spam_action_deliver(proxy, mta, spamd, tmp_path):
    p = proxy(mta.port, **spamd_opts(tmp_path, spamd, spam_action="deliver"))
    c = start(p)
    body = gtube_message()
    r = send_message(c, body, timeout=25)
    assert r.raw == b"250 OK queued as Q1\r\n"
    assert c.cmd("QUIT").code == 221
    stored(mta, body)
    sid = p.session_id(c.local)
    scan = scan_line(p, sid, "spamd")
    assert scan.get("result") == "spam"
    assert float(scan.get("score")) >= 1000
    assert float(scan.get("threshold")) == 7.0
    txn = transaction_line(p, sid)
    assert (txn.get("result"), txn.get("scan")) == ("250", "spam")


def test_clean_message_through_spamd_is_delivered_with_its_score_logged(proxy, mta, spamd, tmp_path):
    p = proxy(mta.port, **spamd_opts(tmp_path, spamd))
    c = start(p)
    body = clean_message()
    assert send_message(c, body, timeout=25).raw == b"250 OK queued as Q1\r\n"
    assert c.cmd("QUIT").code == 221
    stored(mta, body)
    sid = p.session_id(c.local)
    scan = scan_line(p, sid, "spamd")
    assert scan.get("result") == "clean"
    score = float(scan.get("score"))
    assert score < 7.0
    assert score == pytest.approx(spamd.check(body)[0], abs=0.05), "the score is spamd's, for this message"
    assert transaction_line(p, sid).get("scan") == "clean"


def test_spam_threshold_decides_not_spamd(proxy, mta, spamd, tmp_path):
    """A message spamd itself calls ham is spam for a proxy whose threshold is below its score."""
    body = clean_message(subject="tiny threshold")
    score = spamd.check(body)[0]
    p = proxy(mta.port, **spamd_opts(tmp_path, spamd, spam_threshold=f"{score - 1:.1f}"))
    c = start(p)
    r = send_message(c, body, timeout=25)
    assert r.code == 550 and "message looks like spam" in r.text, r
    assert mta.messages == []


# --------------------------------------------------------------------------
# both at once
# --------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["virus_and_spam", "spam_only", "clean"])
def test_both_scanners_on_one_message(proxy, mta, clamd, spamd, tmp_path, kind):
    opts = clamd_opts(tmp_path, clamd)
    opts.update(spamd_opts(tmp_path, spamd))
    p = proxy(mta.port, **opts)
    body = {
        "virus_and_spam": mime_message(EICAR, "eicar.com", text=b"Hello,\n\n" + GTUBE + b"\n"),
        "spam_only": gtube_message(),
        "clean": harmless_message(),
    }[kind]
    c = start(p)
    r = send_message(c, body, timeout=25)
    sid = p.session_id(c.local)
    av, sp = scan_line(p, sid, "clamd"), scan_line(p, sid, "spamd")
    txn = transaction_line(p, sid)
    if kind == "virus_and_spam":
        # a virus outranks spam
        assert r.raw == f"550 {PN}: virus found: {clamd.virus}\r\n".encode()
        assert (av.get("result"), sp.get("result")) == ("virus", "spam")
        assert (txn.get("why"), txn.get("scan")) == ("virus", "virus")
        assert_taken_over(c)
        assert_cut_off(mta)
    elif kind == "spam_only":
        assert SPAM_REPLY.fullmatch(r.text), r
        assert (av.get("result"), sp.get("result")) == ("clean", "spam")
        assert (txn.get("why"), txn.get("scan")) == ("spam", "spam")
        assert_taken_over(c)
        assert_cut_off(mta)
    else:
        assert r.code == 250, r
        assert (av.get("result"), sp.get("result")) == ("clean", "clean")
        assert float(sp.get("score")) < 7
        assert (txn.get("result"), txn.get("scan")) == ("250", "clean")
        assert c.cmd("QUIT").code == 221
        stored(mta, body)


# --------------------------------------------------------------------------
# size bounds on scanning
# --------------------------------------------------------------------------

def test_scan_max_size_lets_a_bigger_message_through_unscanned(proxy, mta, clamd, tmp_path):
    small = eicar_message()
    big = eicar_message(text=b"padding line\n" * 200)
    limit = len(small) + 100
    assert len(big) > limit
    p = proxy(mta.port, **clamd_opts(tmp_path, clamd, scan_max_size=limit))
    c = start(p)
    assert send_message(c, big).raw == b"250 OK queued as Q1\r\n"
    # at or under the bound the message is scanned as before
    assert send_message(c, small).raw == f"550 {PN}: virus found: {clamd.virus}\r\n".encode()
    assert_taken_over(c)
    stored(mta, big)
    sid = p.session_id(c.local)
    scans = p.wait_event("scan", session=sid, scanner="clamd", count=2)
    assert [(s.get("trans"), s.get("result")) for s in scans] == [("1", "skipped"), ("2", "virus")]
    assert int(scans[0].get("size")) == len(big)
    txns = p.wait_event("transaction", session=sid, count=2)
    assert (txns[0].get("result"), txns[0].get("scan")) == ("250", "skipped")


def test_spam_max_size_lets_a_bigger_message_through_unscanned(proxy, mta, spamd, tmp_path):
    big = gtube_message() + b"filler line for size\r\n" * 100
    p = proxy(mta.port, **spamd_opts(tmp_path, spamd, spam_max_size=len(big) - 1))
    c = start(p)
    assert send_message(c, big, timeout=25).raw == b"250 OK queued as Q1\r\n"
    assert c.cmd("QUIT").code == 221
    stored(mta, big)
    sid = p.session_id(c.local)
    assert scan_line(p, sid, "spamd").get("result") == "skipped"
    assert transaction_line(p, sid).get("scan") == "skipped"


# --------------------------------------------------------------------------
# spool
# --------------------------------------------------------------------------

DOTTED = (b"Subject: dots\r\n\r\n.leading dot\r\n..two dots\r\n.\r\n"
          + b"a long line " + b"y" * 5000 + b"\r\n" + b"line\r\n" * 3000 + b".end\r\n")


def test_spool_path_is_created_and_a_clean_message_leaves_no_file(proxy, mta, clamd, tmp_path):
    spool = tmp_path / "spool"
    p = proxy(mta.port, **clamd_opts(tmp_path, clamd, spool_memory=1024))
    assert spool.is_dir(), "spool_path is created at start"
    c = start(p)
    assert len(DOTTED) > 1024
    assert send_message(c, DOTTED).code == 250
    assert c.cmd("QUIT").code == 221
    stored(mta, DOTTED)
    p.wait_close(p.session_id(c.local))
    assert spool_files(spool) == []


def test_spool_leave_on_always_keeps_the_unstuffed_message_mode_0600(proxy, mta, clamd, tmp_path):
    spool = tmp_path / "spool"
    p = proxy(mta.port, **clamd_opts(tmp_path, clamd, spool_memory=1024, spool_leave_on="always"))
    c = start(p)
    assert send_message(c, DOTTED).code == 250
    assert c.cmd("QUIT").code == 221
    stored(mta, DOTTED)
    p.wait_close(p.session_id(c.local))
    (f,) = spool_files(spool)
    assert stat.S_IMODE(f.stat().st_mode) == 0o600
    assert f.read_bytes() == DOTTED, "the spool holds the message as the recipient sees it (un-stuffed)"


def test_spool_perm_sets_the_spool_files_mode_exactly(proxy, mta, clamd, tmp_path):
    """smtp-gated's spool_perm, octal; the umask does not narrow it (the default stays 0600)."""
    spool = tmp_path / "spool"
    p = proxy(mta.port, **clamd_opts(tmp_path, clamd, spool_memory=1024, spool_leave_on="always", spool_perm="0640"))
    c = start(p)
    assert send_message(c, DOTTED).code == 250
    assert c.cmd("QUIT").code == 221
    stored(mta, DOTTED)
    p.wait_close(p.session_id(c.local))
    (f,) = spool_files(spool)
    assert stat.S_IMODE(f.stat().st_mode) == 0o640


def test_spool_memory_0_puts_every_message_in_a_file_while_it_is_scanned(proxy, mta, fake_scanner, tmp_path):
    """While a (silent) scanner keeps the verdict pending the message sits in a 0600 file."""
    spool = tmp_path / "spool"
    silent = fake_scanner("silent")
    p = proxy(mta.port, antivirus_type="clamd", antivirus_path=silent.addr, spool_path=str(spool),
              spool_memory=0, timeout_scanner=3, spool_leave_on="never")
    c = start(p)
    body = clean_message(body=b".dot\n..dots\nend")
    assert c.cmd("MAIL FROM:<alice@customer.test>").code == 250
    assert c.cmd("RCPT TO:<bob@example.test>").code == 250
    assert c.cmd("DATA").code == 354
    c.send(dot_stuff(body))
    (f,) = wait_until(lambda: spool_files(spool), 2, what="a spool file during the scan")
    assert stat.S_IMODE(f.stat().st_mode) == 0o600
    assert f.read_bytes() == body
    r = c.read_reply(timeout=8)
    assert r.code == 451, r
    wait_until(lambda: spool_files(spool) == [], 3, what="spool file removed (spool_leave_on never)")
    assert mta.messages == []


@pytest.mark.parametrize("leave_on,outcome,kept", [
    ("error", "virus", False),
    ("virus", "virus", True),
    ("spam,virus", "clean", False),
    ("never", "virus", False),
    ("always", "virus", True),
])
def test_spool_leave_on_per_outcome(proxy, mta, clamd, tmp_path, leave_on, outcome, kept):
    spool = tmp_path / "spool"
    p = proxy(mta.port, **clamd_opts(tmp_path, clamd, spool_memory=0, spool_leave_on=leave_on))
    body = eicar_message() if outcome == "virus" else harmless_message()
    c = start(p)
    r = send_message(c, body)
    assert r.code == (550 if outcome == "virus" else 250), r
    c.cmd("QUIT")
    p.wait_close(p.session_id(c.local))
    assert_spool(spool, body, kept)


# --------------------------------------------------------------------------
# NAT header
# --------------------------------------------------------------------------

def nat_generic(c, sid, abuse=None, name="X-Nat-Received"):
    h = (f"{name}: from [127.0.0.1]:{c.local_port} [ident-empty]\r\n"
         f"\tby {PN} with SMTPGate id {sid}\r\n")
    if abuse is not None:
        h += f"\tabuse-to {abuse}\r\n"
    return h.encode()


@pytest.mark.parametrize("scanning", [True, False])
def test_nat_header_generic_is_the_first_lines_of_each_message(proxy, mta, clamd, tmp_path, scanning):
    opts = clamd_opts(tmp_path, clamd) if scanning else {}
    p = proxy(mta.port, nat_header_type="generic", **opts)
    c = start(p)
    one, two = harmless_message(subject="one"), b"Subject: two\r\n\r\n.dotted\r\n"
    assert send_message(c, one).code == 250
    assert send_message(c, two).code == 250
    assert c.cmd("QUIT").code == 221
    sid = p.session_id(c.local)
    stored_one, stored_two = mta.wait_messages(2)
    assert stored_one.content == nat_generic(c, sid) + one
    assert stored_two.content == nat_generic(c, sid) + two


def test_nat_header_with_abuse_and_own_name(proxy, mta, clamd, tmp_path):
    abuse = "abuse@isp.example (phone +1 555 0100)"
    p = proxy(mta.port, nat_header_type="generic", nat_header="X-Client-Behind-NAT", abuse=abuse,
              **clamd_opts(tmp_path, clamd))
    c = start(p)
    body = harmless_message()
    assert send_message(c, body).code == 250
    assert c.cmd("QUIT").code == 221
    sid = p.session_id(c.local)
    (m,) = mta.wait_messages(1)
    assert m.content == nat_generic(c, sid, abuse=abuse, name="X-Client-Behind-NAT") + body


def test_nat_header_ip_only(proxy, mta, clamd, tmp_path):
    p = proxy(mta.port, nat_header_type="ip-only", **clamd_opts(tmp_path, clamd))
    c = start(p)
    body = harmless_message()
    assert send_message(c, body).code == 250
    assert c.cmd("QUIT").code == 221
    (m,) = mta.wait_messages(1)
    assert m.content == b"X-Nat-Received: 127.0.0.1\r\n" + body


def test_nat_header_none_by_default(proxy, mta, clamd, tmp_path):
    p = proxy(mta.port, abuse="abuse@isp.example", **clamd_opts(tmp_path, clamd))
    c = start(p)
    body = harmless_message()
    assert send_message(c, body).code == 250
    c.cmd("QUIT")
    stored(mta, body)


def check_config(path):
    # the subcommand takes the file as its argument (see test_daemon.py)
    r = subprocess.run([SMTPGATE_BIN, "check-config", str(path)], capture_output=True, timeout=10)
    return r.returncode, r.stdout.decode("utf-8", "replace"), r.stderr.decode("utf-8", "replace")


@pytest.mark.parametrize("line,option", [
    (b"abuse abuse@isp.example\x1b[2J", "abuse"),
    (b"abuse abuse@isp.example\x01", "abuse"),
    (b"abuse abuse@isp.example\x00", None),         # refused by the file reader, before any option
    (b"nat_header X-Nat:Received", "nat_header"),
    (b"nat_header X Nat", "nat_header"),
    (b"nat_header_type sometimes", "nat_header_type"),
])
def test_check_config_rejects_bad_nat_header_settings(tmp_path, line, option):
    cfg = tmp_path / "bad.conf"
    cfg.write_bytes(b"mode fixed\nfixed_server 127.0.0.1\n" + line + b"\n")
    rc, out, err = check_config(cfg)
    assert rc != 0, out
    lines = [l for l in err.splitlines() if l.startswith(f"{cfg}:3:")]
    assert lines, f"expected '{cfg}:3: ...' on stderr, got {err!r}"
    if option:
        assert f"option '{option}'" in lines[0], lines[0]


def test_check_config_abuse_cannot_smuggle_a_header_line(tmp_path):
    cfg = tmp_path / "bad.conf"
    cfg.write_bytes(b"mode fixed\nfixed_server 127.0.0.1\nabuse a@isp.example\rX-Injected: yes\n")
    rc, out, err = check_config(cfg)
    assert rc != 0, out
    assert f"{cfg}:" in err, err


def test_check_config_accepts_and_shows_scanning_settings(tmp_path):
    cfg = tmp_path / "good.conf"
    cfg.write_text("mode fixed\nfixed_server 127.0.0.1\nnat_header_type ip-only\nnat_header X-Real-Client\n"
                   "abuse abuse@isp.example (24/7)\nantivirus_type clamd\nantivirus_path 127.0.0.1:3310\n"
                   "antispam_type spamassassin\nantispam_path /run/spamd.sock\nspam_action deliver\n"
                   "spool_leave_on error,virus\n")
    rc, out, err = check_config(cfg)
    assert rc == 0, err
    eff = {k: v for k, _, v in (l.partition(" ") for l in out.splitlines())}
    assert eff["nat_header_type"] == "ip-only"
    assert eff["nat_header"] == "X-Real-Client"
    assert eff["abuse"] == "abuse@isp.example (24/7)"
    assert eff["antivirus_path"] == "127.0.0.1:3310"
    assert eff["spam_action"] == "deliver"


# --------------------------------------------------------------------------
# action script
# --------------------------------------------------------------------------

def write_script(tmp_path, body):
    script = tmp_path / "action.sh"
    script.write_text("#!/bin/sh\n" + body)
    script.chmod(0o755)
    return script


def recording_script(tmp_path):
    out = tmp_path / "action-out"
    out.mkdir()
    return write_script(tmp_path, f'env > "{out}/env.tmp" && mv "{out}/env.tmp" "{out}/env"\n'
                                  f'printf "%s\\n" "$#" "$@" > "{out}/args.tmp" && mv "{out}/args.tmp" "{out}/args"\n'), out


def read_run(out):
    wait_until(lambda: (out / "env").exists() and (out / "args").exists(), 5, what="the action script ran")
    env = dict(l.split("=", 1) for l in (out / "env").read_text().splitlines() if "=" in l)
    argc, *argv = (out / "args").read_text().splitlines()
    assert int(argc) == len(argv)
    return env, argv


def test_action_script_on_virus_gets_the_environment_and_arguments(proxy, mta, clamd, tmp_path):
    script, out = recording_script(tmp_path)
    p = proxy(mta.port, action_script=str(script), timeout_action=5, **clamd_opts(tmp_path, clamd))
    c = start(p)
    body = eicar_message()
    assert send_message(c, body).code == 550
    env, argv = read_run(out)
    assert argv == ["VIRUS", "127.0.0.1", "-", "127.0.0.1"]
    expect = {
        "PROXY_NAME": PN, "FOUND": "VIRUS", "VIRUS_NAME": clamd.virus,
        "SOURCE_IP": "127.0.0.1", "SOURCE_PORT": str(c.local_port),
        "TARGET_IP": "127.0.0.1", "TARGET_PORT": str(mta.port),
        "LOCAL_IP": "127.0.0.1", "LOCAL_PORT": str(p.port),
        "HELO": "client.test", "RCPTS_TOTAL": "1", "SIZE": str(len(body)), "TRANSACTION": "1",
    }
    assert {k: env.get(k) for k in expect} == expect
    assert "alice@customer.test" in env["MAIL_FROM"]
    for k in ("IDENT", "SPOOL_NAME", "TIME", "UNIXTIME"):
        assert k in env, f"{k} missing from the action script's environment"
    assert abs(int(env["UNIXTIME"]) - time.time()) < 120


def test_action_script_on_spam(proxy, mta, spamd, tmp_path):
    script, out = recording_script(tmp_path)
    p = proxy(mta.port, action_script=str(script), timeout_action=5, **spamd_opts(tmp_path, spamd))
    c = start(p)
    r = send_message(c, gtube_message(), timeout=25)
    m = SPAM_REPLY.fullmatch(r.text)
    assert m, r
    env, argv = read_run(out)
    assert argv == ["SPAM", "127.0.0.1", "-", "127.0.0.1"]
    assert env["FOUND"] == "SPAM"
    assert float(env["SPAM_SCORE"]) == float(m.group(1))


def test_action_script_runs_only_for_what_was_found(proxy, mta, clamd, tmp_path):
    runs = tmp_path / "runs"
    script = write_script(tmp_path, f'echo "$FOUND $SOURCE_PORT" >> "{runs}"\n')
    p = proxy(mta.port, action_script=str(script), **clamd_opts(tmp_path, clamd))
    clean = start(p)
    assert send_message(clean, harmless_message()).code == 250
    clean.cmd("QUIT")
    p.wait_close(p.session_id(clean.local))
    infected = start(p)
    assert send_message(infected, eicar_message()).code == 550
    wait_until(lambda: runs.exists() and runs.read_text().endswith("\n"), 5, what="the action script ran")
    assert infected.cmd("QUIT").code == 221
    assert runs.read_text() == f"VIRUS {infected.local_port}\n", "one run, for the virus, none for the clean one"


def _running(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_slow_action_script_is_killed_and_does_not_hold_the_reply(proxy, mta, clamd, tmp_path):
    pidfile = tmp_path / "script.pid"
    script = write_script(tmp_path, f'echo $$ > "{pidfile}"\nexec sleep 30\n')
    p = proxy(mta.port, action_script=str(script), timeout_action=2, **clamd_opts(tmp_path, clamd))
    c = start(p)
    assert c.cmd("MAIL FROM:<alice@customer.test>").code == 250
    assert c.cmd("RCPT TO:<bob@example.test>").code == 250
    assert c.cmd("DATA").code == 354
    c.send(dot_stuff(eicar_message()))
    t0 = time.monotonic()
    assert c.read_reply().code == 550
    assert time.monotonic() - t0 < 1.5, "the reply does not wait for the action script"
    pid = int(wait_until(lambda: pidfile.exists() and pidfile.read_text().strip(), 5, what="script started"))
    p.wait_event("action", timeout=8, error="timeout")
    wait_until(lambda: not _running(pid), 3, what=f"action script pid {pid} killed")


@pytest.mark.parametrize("forbid, warned", [(False, True), (True, False)])
def test_scanning_with_starttls_relayed_is_warned_about(proxy, mta, clamd, tmp_path, forbid, warned):
    """Messages after STARTTLS cannot be scanned: the daemon says so at start when it relays STARTTLS."""
    p = proxy(mta.port, forbid_starttls=forbid, **clamd_opts(tmp_path, clamd))
    p.wait_event("start")
    c = start(p)
    c.cmd("QUIT")
    p.wait_event("close")
    warnings = p.events("config")
    assert bool(warnings) == warned, warnings
    if warned:
        assert "not scanned" in warnings[0].get("warning")
