"""Postfix-style restriction lists with the real daemon, the aiosmtpd MTA and a real dnsmasq on loopback:
with Postfix's smtpd_delay_reject default every list is applied at RCPT (client, HELO, sender, recipient
in that order), DATA has its own list; a refused RCPT among pipelined ones keeps the reply order even when
its answer waits for DNS; warn_if_reject and policy_mode warn log ``reject_warning`` and refuse nothing;
names SMTPGate does not do are configuration errors naming the line.
"""

import subprocess

from conftest import SMTPGATE_BIN, Client
from dnsserver import dnsmasq, reversed_name, scripted_dns  # noqa: F401  (fixtures)
from scanners import harmless_message, send_message

BL = "bl.example"


def session(p, source, helo="EHLO mail.customer.example"):
    c = Client(p.port, source=source)
    assert c.greeting().code == 220
    assert c.cmd(helo).code == 250
    return c


def test_reject_rbl_client_refuses_at_rcpt_and_the_mta_never_gets_the_recipient(proxy, mta, dnsmasq):
    dns = dnsmasq([(reversed_name("127.0.0.101", BL), "127.0.0.2")])
    p = proxy(mta.port, dns_server=dns.address, recipient_restrictions=f"reject_rbl_client {BL}, permit")
    c = session(p, "127.0.0.101")
    assert c.cmd("MAIL FROM:<a@customer.example>").code == 250
    # aiosmtpd offers no ENHANCEDSTATUSCODES, so none is sent; Postfix's text, without the proxy's name.
    assert c.cmd("RCPT TO:<b@example.net>").text == f"554 Service unavailable; Client host [127.0.0.101] blocked using {BL}"
    assert c.cmd("QUIT").code == 221
    c.wait_closed()
    assert b"RCPT" not in bytes(mta.conns[0].raw)
    (rej,) = p.wait_event("reject", command="rcpt")
    assert (rej.get("to"), rej.get("code"), rej.get("reason"), rej.get("rule")) == (
        "<b@example.net>", "554", "restriction", f"recipient_restrictions reject_rbl_client {BL}"), rej
    other = session(p, "127.0.0.102")
    assert send_message(other, harmless_message()).code == 250, "a client the zone does not list is relayed"


def test_pipelined_rcpts_waiting_for_dns_keep_their_reply_order(proxy, mta, dnsmasq):
    dns = dnsmasq([("known.example", "192.0.2.10")])
    p = proxy(mta.port, dns_server=dns.address, recipient_restrictions="reject_unknown_recipient_domain")
    c = session(p, "127.0.0.103")
    c.send(b"MAIL FROM:<a@customer.example>\r\nRCPT TO:<a@known.example>\r\nRCPT TO:<b@unknown.example>\r\n"
           b"RCPT TO:<c@known.example>\r\nDATA\r\n")
    replies = [c.read_reply() for _ in range(5)]
    assert [r.code for r in replies] == [250, 250, 450, 250, 354], replies
    assert replies[2].text == "450 <b@unknown.example>: Recipient address rejected: Domain not found"
    c.send(b"Subject: t\r\n\r\nbody\r\n.\r\n")
    assert c.read_reply().code == 250
    (m,) = mta.wait_messages(1)
    assert m.rcpt_tos == ["a@known.example", "c@known.example"]


def test_helo_and_sender_lists_are_applied_at_rcpt(proxy, mta):
    p = proxy(mta.port, helo_restrictions="reject_non_fqdn_helo_hostname",
              sender_restrictions="reject_non_fqdn_sender")
    c = session(p, "127.0.0.104", helo="EHLO pc1")
    assert c.cmd("MAIL FROM:<a@customer.example>").code == 250, "delayed: the HELO is judged at RCPT"
    assert c.cmd("RCPT TO:<b@example.net>").text == "504 <pc1>: Helo command rejected: need fully-qualified hostname"
    d = session(p, "127.0.0.105")
    assert d.cmd("MAIL FROM:<alice@localhost>").code == 250
    assert d.cmd("RCPT TO:<b@example.net>").text == "504 <alice@localhost>: Sender address rejected: need fully-qualified address"
    assert d.cmd("RSET").code == 250
    assert send_message(d, harmless_message()).code == 250


def test_permit_mynetworks_and_data_restrictions(proxy, mta):
    p = proxy(mta.port, mynetworks="127.0.0.106/32", client_restrictions="permit_mynetworks, reject",
              data_restrictions="reject_unauth_pipelining")
    inside = session(p, "127.0.0.106")
    assert send_message(inside, harmless_message()).code == 250
    outside = session(p, "127.0.0.107")
    assert outside.cmd("MAIL FROM:<a@customer.example>").code == 250
    assert outside.cmd("RCPT TO:<b@example.net>").text == "554 <unknown[127.0.0.107]>: Client host rejected: Access denied"
    # aiosmtpd offers PIPELINING: DATA sent ahead with the RCPT is allowed.
    inside.send(b"MAIL FROM:<a@customer.example>\r\nRCPT TO:<b@example.net>\r\nDATA\r\n")
    assert [inside.read_reply().code for _ in range(3)] == [250, 250, 354]


def test_warn_if_reject_and_policy_mode_warn_log_and_refuse_nothing(proxy, mta):
    p = proxy(mta.port, recipient_restrictions="warn_if_reject reject_non_fqdn_recipient, permit")
    c = session(p, "127.0.0.108")
    assert send_message(c, harmless_message(), rcpts=("postmaster",)).code == 250
    (w,) = p.wait_event("reject_warning")
    assert (w.get("command"), w.get("to"), w.get("code"), w.get("rule")) == (
        "rcpt", "<postmaster>", "504", "recipient_restrictions reject_non_fqdn_recipient"), w
    assert "need fully-qualified address" in w.get("reply"), w
    assert p.events("reject") == []

    q = proxy(mta.port, policy_mode="warn", client_restrictions="reject")
    d = session(q, "127.0.0.109")
    assert send_message(d, harmless_message()).code == 250
    (w2,) = q.wait_event("reject_warning")
    assert w2.get("rule") == "client_restrictions reject" and q.events("reject") == []
    assert len(mta.wait_messages(2)) == 2


def test_check_config_names_what_smtpgate_does_not_do(tmp_path):
    conf = tmp_path / "r.conf"
    conf.write_text("mode fixed\nfixed_server 127.0.0.1\nrecipient_restrictions permit_mynetworks, reject_unauth_destination\n")
    r = subprocess.run([SMTPGATE_BIN, "check-config", str(conf)], capture_output=True, text=True, timeout=30)
    assert r.returncode != 0
    assert f"{conf}:3:" in r.stderr and "reject_unauth_destination is not supported" in r.stderr, r.stderr


def rcpt_code(p, source, rcpt):
    c = session(p, source)
    assert c.cmd("MAIL FROM:<a@customer.example>").code == 250
    r = c.cmd(f"RCPT TO:<{rcpt}>")
    c.cmd("QUIT")
    c.close()
    return r


def test_sighup_rereads_a_map_and_a_broken_map_keeps_the_running_one(proxy, mta, tmp_path):
    import signal
    from conftest import wait_until
    access = tmp_path / "recipient_access"
    access.write_text("blocked@example.net REJECT not here\n")
    p = proxy(mta.port, recipient_restrictions=f"check_recipient_access texthash:{access}")
    assert rcpt_code(p, "127.0.0.110", "blocked@example.net").text == "554 <blocked@example.net>: Recipient address rejected: not here"
    assert rcpt_code(p, "127.0.0.110", "other@example.net").code == 250
    access.write_text("blocked@example.net REJECT not here\nother@example.net REJECT gone too\n")
    p.signal(signal.SIGHUP)
    wait_until(lambda: [r for r in p.events("reload") if r.get("result") == "ok" or "ok" in r.words], what="reload ok")
    assert rcpt_code(p, "127.0.0.110", "other@example.net").text == "554 <other@example.net>: Recipient address rejected: gone too"
    access.write_text("other@example.net FILTER smtp:[192.0.2.1]\n")
    p.signal(signal.SIGHUP)
    (bad,) = p.wait_event("reload", result="failed")
    assert f"{access}:1:" in bad.get("error") and "no meaning" in bad.get("error"), bad
    assert rcpt_code(p, "127.0.0.110", "other@example.net").code == 554, "the running map is kept"


def test_a_silent_resolver_defers_within_the_timeout_and_other_sessions_go_on(proxy, mta, scripted_dns):
    import time
    silent = scripted_dns("silent")
    p = proxy(mta.port, dns_server=silent.address, timeout_dns=1, sender_restrictions="reject_unknown_sender_domain")
    c = session(p, "127.0.0.111")
    assert c.cmd("MAIL FROM:<a@customer.example>").code == 250
    c.send(b"RCPT TO:<b@example.net>\r\n")
    t0 = time.monotonic()
    other = session(p, "127.0.0.112")            # while the first waits for DNS
    assert other.cmd("NOOP").code == 250 and time.monotonic() - t0 < 1, "another session is not held up"
    r = c.read_reply(timeout=5)
    took = time.monotonic() - t0
    assert r.text == "450 <a@customer.example>: Sender address rejected: Domain lookup failed", r
    assert 0.9 <= took < 3, took


def test_a_rcpt_pipelined_behind_its_mail_is_judged_with_that_sender(proxy, mta, tmp_path):
    access = tmp_path / "sender_access"
    access.write_text("forged.example REJECT forged account\n")
    p = proxy(mta.port, sender_restrictions=f"check_sender_access texthash:{access}")
    c = session(p, "127.0.0.113")
    c.send(b"MAIL FROM:<ceo@forged.example>\r\nRCPT TO:<b@example.net>\r\nDATA\r\n")
    replies = [c.read_reply() for _ in range(3)]
    assert [r.code for r in replies] == [250, 554, 503], replies   # DATA: the MTA has no recipient
    assert replies[1].text == "554 <ceo@forged.example>: Sender address rejected: forged account"
    c.cmd("QUIT")
    assert b"RCPT" not in bytes(mta.conns[0].raw)


def test_client_names_come_from_ptr_records_confirmed_forward(proxy, mta, dnsmasq, tmp_path):
    # --host-record makes both the A and the PTR record; --ptr-record alone a PTR that does not lead back.
    dns = dnsmasq([("pc161.dialup.example", "127.0.0.161")], local=("example", "in-addr.arpa"))
    access = tmp_path / "client_access"
    access.write_text("dialup.example REJECT send through smtp.isp.example\n")
    p = proxy(mta.port, dns_server=dns.address,
              client_restrictions=f"check_client_access texthash:{access}, reject_unknown_client_hostname")
    c = session(p, "127.0.0.161")
    assert c.cmd("MAIL FROM:<a@customer.example>").code == 250
    assert c.cmd("RCPT TO:<b@example.net>").text == \
        "554 <pc161.dialup.example[127.0.0.161]>: Client host rejected: send through smtp.isp.example"
    d = session(p, "127.0.0.162")
    assert d.cmd("MAIL FROM:<a@customer.example>").code == 250
    assert d.cmd("RCPT TO:<b@example.net>").text == "450 Client host rejected: cannot find your hostname, [127.0.0.162]"
