"""``regex_reject_*`` / ``regex_enforce_*`` with the real daemon and the aiosmtpd MTA: a HELO, sender or
recipient refused by a rule gets 550 from the proxy and never reaches the MTA, a RCPT refused among pipelined
ones keeps the reply order, a pattern that backtracks without end on hostile input is a 451 within the
limit (logged, never a stall), ``lock_on regex`` locks, and ``auth_skip regex`` spares an authenticated client.
"""

import base64
import time

from conftest import AUTH_PASS, AUTH_USER, PROXY_NAME, Client
from scanners import harmless_message, send_message


def session(p, source, helo="EHLO client.test"):
    c = Client(p.port, source=source)
    assert c.greeting().code == 220
    assert c.cmd(helo).code == 250
    return c


def rejects(p, c, count):
    found = p.wait_event("reject", count=count, client=c.local)
    return [(e.get("command"), e.get("code"), e.get("reason"), e.get("rule")) for e in found]


def test_a_helo_rule_refuses_the_name_and_the_mta_never_hears_it(proxy, mta):
    p = proxy(mta.port, regex_reject_helo=r"^(localhost|[\d.]+)$")
    c = Client(p.port, source="127.0.0.91")
    assert c.greeting().code == 220
    # aiosmtpd offers no ENHANCEDSTATUSCODES; before EHLO the proxy's replies carry them.
    assert c.cmd("EHLO LOCALHOST").text == f"550 5.7.1 {PROXY_NAME}: HELO name rejected by policy"
    assert c.cmd("EHLO pc1.customer.test").code == 250
    assert send_message(c, harmless_message()).code == 250
    assert c.cmd("QUIT").code == 221
    c.wait_closed()
    (m,) = mta.wait_messages(1)
    assert b"LOCALHOST" not in bytes(m.conn.raw) and m.helo == "pc1.customer.test"
    (rej,) = p.wait_event("reject", command="helo")
    assert (rej.get("helo"), rej.get("code"), rej.get("reason"), rej.get("rule")) == (
        "LOCALHOST", "550", "regex", "regex_reject_helo"), rej


def test_enforce_mail_from_refuses_senders_outside_the_pattern(proxy, mta):
    p = proxy(mta.port, regex_enforce_mail_from=r"@customer\.test$")
    c = session(p, "127.0.0.92")
    assert c.cmd("MAIL FROM:<spoof@bank.test>").text == f"550 {PROXY_NAME}: sender address rejected by policy"
    assert c.cmd("MAIL FROM:<>").code == 550, "the null sender is the empty string: it does not match"
    assert send_message(c, harmless_message(), mail_from="alice@customer.test").code == 250
    assert c.cmd("QUIT").code == 221
    (m,) = mta.wait_messages(1)
    assert b"bank.test" not in bytes(m.conn.raw)
    assert rejects(p, c, 2) == [("mail", "550", "regex", "regex_enforce_mail_from")] * 2


def test_a_rcpt_refused_among_pipelined_ones_keeps_the_reply_order(proxy, mta):
    p = proxy(mta.port, regex_reject_rcpt_to=r"^abuse@")
    c = session(p, "127.0.0.93")
    c.send(b"MAIL FROM:<a@customer.test>\r\nRCPT TO:<b@x.test>\r\nRCPT TO:<ABUSE@x.test>\r\nRCPT TO:<c@x.test>\r\nDATA\r\n")
    codes = [c.read_reply().code for _ in range(5)]
    assert codes == [250, 250, 550, 250, 354], codes
    c.send(b"Subject: t\r\n\r\nbody\r\n.\r\n")
    assert c.read_reply().code == 250
    assert c.cmd("QUIT").code == 221
    (m,) = mta.wait_messages(1)
    assert m.rcpt_tos == ["b@x.test", "c@x.test"]
    (rej,) = p.wait_event("reject", command="rcpt")
    assert (rej.get("to"), rej.get("rule")) == ("<ABUSE@x.test>", "regex_reject_rcpt_to"), rej


def test_a_pattern_that_backtracks_without_end_is_a_451_within_the_limit(proxy, mta):
    p = proxy(mta.port, regex_reject_helo=r"^(a+)+$")
    c = Client(p.port, source="127.0.0.94")
    assert c.greeting().code == 220
    t0 = time.monotonic()
    r = c.cmd("EHLO " + "a" * 400 + "!")
    took = time.monotonic() - t0
    assert r.text == f"451 4.3.0 {PROXY_NAME}: temporary failure checking the command, try again later", r
    assert took < 2, took
    other = session(p, "127.0.0.95")           # the event loop was never held up
    assert other.cmd("NOOP").code == 250
    (rej,) = p.wait_event("reject", command="helo")
    assert rej.get("reason") == "regex_failed" and "limit" in rej.get("error"), rej


def test_lock_on_regex_locks_the_client(proxy, mta, tmp_path):
    p = proxy(mta.port, regex_reject_mail_from=r"^spam@", lock_on="regex", lock_duration=600,
              state_store=f"sqlite:{tmp_path}/state.db", control_path=f"{tmp_path}/control.sock",
              nat_sources="192.0.2.1")
    c = session(p, "127.0.0.96")
    assert c.cmd("MAIL FROM:<spam@x.test>").code == 550
    (lock,) = p.wait_event("lock", key="127.0.0.96")
    assert (lock.get("lock_cause"), lock.get("reason")) == ("regex", "regex_reject_mail_from"), lock
    c.close()
    again = Client(p.port, source="127.0.0.96")
    assert again.read_reply(timeout=3).text.startswith(f"554 5.7.1 {PROXY_NAME}: your address is locked (regex)")


def test_auth_skip_regex_spares_an_authenticated_client(proxy, mta):
    p = proxy(mta.port, regex_enforce_mail_from=r"@customer\.test$", auth_skip="regex")
    c = session(p, "127.0.0.97")
    assert c.cmd("MAIL FROM:<roamer@elsewhere.test>").code == 550
    auth = base64.b64encode(b"\0" + AUTH_USER.encode() + b"\0" + AUTH_PASS.encode()).decode()
    assert c.cmd(f"AUTH PLAIN {auth}").code == 235
    assert send_message(c, harmless_message(), mail_from="roamer@elsewhere.test").code == 250
    assert c.cmd("QUIT").code == 221
    assert [m.mail_from for m in mta.wait_messages(1)] == ["roamer@elsewhere.test"]


def test_the_action_script_runs_once_per_session_and_rule_however_often_the_client_repeats(proxy, mta, tmp_path):
    from conftest import wait_until
    out = tmp_path / "actions.txt"
    script = tmp_path / "action.sh"
    script.write_text(f"#!/bin/sh\necho \"$FOUND $SOURCE_IP\" >> {out}\n")
    script.chmod(0o755)
    p = proxy(mta.port, regex_reject_mail_from=r"^spam@", action_script=str(script))
    c = session(p, "127.0.0.98")
    for _ in range(5):
        assert c.cmd("MAIL FROM:<spam@x.test>").code == 550
    assert c.cmd("QUIT").code == 221
    wait_until(lambda: out.exists() and out.read_text(), 5, what="the action script's output")
    time.sleep(0.5)
    assert out.read_text().splitlines() == ["REGEX 127.0.0.98"]
    assert len(p.events("reject", command="mail")) == 5, "every refusal is still logged"
