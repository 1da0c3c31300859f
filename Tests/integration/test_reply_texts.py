"""smtp-gated's ``msg_*`` reply texts, ``spool_header`` and ``email_length`` with the real daemon: a configured
text replaces the proxy's own in the bytes the client reads while the codes stay, its variables are the
reply's values, a listener has its own texts, check-config refuses a bad template with its line; the spool
header is in the kept spool and never at the MTA; long addresses are cut in the log lines.

The aiosmtpd MTA does not advertise ENHANCEDSTATUSCODES, so replies after EHLO carry no enhanced code;
connect-time replies (before any EHLO) do.
"""

import signal
import subprocess

from conftest import PROXY_NAME, SMTPGATE_BIN, start, wait_until
from scanners import eicar_message, harmless_message, send_message, spool_files

PN = PROXY_NAME


def test_a_virus_and_the_takeover_answer_with_the_configured_texts(proxy, mta, clamd, tmp_path):
    p = proxy(mta.port, antivirus_type="clamd", antivirus_path=clamd.path("unix"), spool_path=str(tmp_path / "spool"),
              timeout_scanner=5, msg_virus_found="Malware found ($virus), go to https://example.test/av",
              msg_sign_off="Signing off.")
    c = start(p)
    r = send_message(c, eicar_message())
    assert r.raw == f"550 {PN}: Malware found ({clamd.virus}), go to https://example.test/av\r\n".encode()
    # The proxy answers the rest of the session, QUIT with msg_sign_off.
    assert c.cmd("MAIL FROM:<again@customer.test>").code == 451
    assert c.cmd("QUIT").raw == f"221 {PN}: Signing off.\r\n".encode()
    (scan,) = p.wait_event("scan", session=p.session_id(c.local), scanner="clamd")
    assert scan.get("virus") == clamd.virus, "the log keeps its own fields whatever the reply says"
    assert mta.messages == []


def test_a_connect_time_refusal_keeps_its_enhanced_code_and_names_the_limit(proxy, mta):
    p = proxy(mta.port, max_per_host=1, max_connections=0,
              msg_max_per_host="Too many connections from your host (at most $limit), try again later")
    c1 = p.connect()
    assert c1.greeting().code == 220
    c2 = p.connect()
    assert c2.read_line() == f"554 5.7.0 {PN}: Too many connections from your host (at most 1), try again later\r\n".encode()
    assert c2.wait_closed() == b""
    (rej,) = p.wait_event("reject", client=c2.local)
    assert (rej.get("reason"), rej.get("limit")) == ("max_per_host", "1")


def test_a_rate_limit_takes_its_own_text_before_the_general_one(proxy, mta, tmp_path):
    p = proxy(mta.port, state_store=f"sqlite:{tmp_path}/state.db", ratelimit_recipients="1/3600",
              msg_rate_reject="Rejected due to rate or quota limit",
              msg_ratelimit_rcptto="Too many recipients: $count in $seconds s, at most $limit ($option)")
    c = start(p)
    assert c.cmd("MAIL FROM:<alice@customer.test>").code == 250
    assert c.cmd("RCPT TO:<bob@example.test>").code == 250
    r = c.cmd("RCPT TO:<carol@example.test>")
    assert r.raw == f"451 {PN}: Too many recipients: 1 in 3600 s, at most 1 (ratelimit_recipients)\r\n".encode(), r
    assert c.cmd("QUIT").code == 221


def send_too_big(c):
    """A 200-byte message to a size_limit of 100: returns the reply to its final dot."""
    assert c.cmd("MAIL FROM:<alice@customer.test>").code == 250
    assert c.cmd("RCPT TO:<bob@example.test>").code == 250
    assert c.cmd("DATA").code == 354
    c.send(b"Subject: big\r\n\r\n" + b"x" * 200 + b"\r\n.\r\n")
    return c.read_reply()


def test_a_text_applies_to_new_sessions_after_a_reload(proxy, mta, tmp_path):
    p = proxy(mta.port, size_limit=100, msg_size_limit="Message too big (at most $limit bytes)")
    c = start(p)
    assert send_too_big(c).raw == f"552 {PN}: Message too big (at most 100 bytes)\r\n".encode()
    c.close()
    # Without the option the proxy's own text comes back.
    del p.options["msg_size_limit"]
    p.write_config()
    p.signal(signal.SIGHUP)
    wait_until(lambda: [r for r in p.events("reload") if "msg_size_limit" in (r.get("changed") or "")], what="reload")
    c = start(p)
    assert send_too_big(c).raw == f"552 {PN}: message size exceeds fixed limit (size_limit 100)\r\n".encode()
    c.close()


def check_config(tmp_path, text):
    path = tmp_path / "msg.conf"
    path.write_text("mode fixed\nfixed_server 127.0.0.1\n" + text)
    return subprocess.run([SMTPGATE_BIN, "check-config", str(path)], capture_output=True, timeout=20,
                          stdin=subprocess.DEVNULL)


def test_check_config_refuses_an_unknown_variable_with_its_line_and_the_known_ones(tmp_path):
    r = check_config(tmp_path, "msg_virus_found Malware $name found\n")
    assert r.returncode == 1, r.stderr
    assert "msg.conf:3: option 'msg_virus_found': msg_virus_found has no variable $name (known: $virus)" in r.stderr.decode()


def test_check_config_prints_the_texts_and_warns_about_those_without_a_reply(tmp_path):
    r = check_config(tmp_path, "msg_virus_found Malware found ($virus)\nmsg_hello SMTP Proxy, hello\n")
    assert r.returncode == 0, r.stderr
    out = r.stdout.decode()
    assert "\nmsg_virus_found Malware found ($virus)\n" in out
    assert "\nmsg_hello SMTP Proxy, hello\n" in out, "smtp-gated's line is shown under the no-effect comment"
    assert "msg_hello has no effect in SMTPGate: this proxy never sends that reply" in r.stderr.decode()


def test_the_spool_header_is_in_the_kept_spool_and_never_at_the_mta(proxy, mta, clamd, tmp_path):
    spool = tmp_path / "spool"
    p = proxy(mta.port, antivirus_type="clamd", antivirus_path=clamd.path("unix"), spool_path=str(spool),
              timeout_scanner=5, spool_leave_on="always", spool_header="X-Proxy-Spool-Info")
    c = start(p)
    body = harmless_message()
    assert send_message(c, body).code == 250
    assert c.cmd("QUIT").code == 221
    (m,) = mta.wait_messages(1)
    assert m.content == body, "the MTA gets the message without the spool header"
    sid = p.session_id(c.local)
    p.wait_close(sid)
    (f,) = spool_files(spool)
    kept = f.read_bytes()
    head, rest = kept.split(b"\r\n", 1)
    assert head == (f"X-Proxy-Spool-Info: session={sid} listener=main client={c.local} "
                    f"dest=127.0.0.1:{mta.port} by {PN}").encode(), head
    assert rest == body
    (scan,) = p.wait_event("scan", session=sid, scanner="clamd")
    assert (scan.get("result"), int(scan.get("size"))) == ("clean", len(kept))


def test_email_length_cuts_the_logged_addresses(proxy, mta):
    p = proxy(mta.port, email_length=12)
    c = start(p)
    assert c.cmd("MAIL FROM:<alice.longname@customer.test>").code == 250
    assert c.cmd("RCPT TO:<bob@example.test>").code == 250
    assert c.cmd("RSET").code == 250
    assert c.cmd("QUIT").code == 221
    (t,) = p.wait_event("transaction", session=p.session_id(c.local))
    assert t.get("from") == "<alice.longn..."
    assert t.getall("rcpt") == ["<bob@example...:250"]
