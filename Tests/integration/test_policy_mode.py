"""``policy_mode warn`` with the real daemon: a DNSBL listing, an early talker, a regex_* rule, a restriction
and a rate limit each log a ``reject_warning`` line naming what would have been refused, the client is
relayed as if nothing had been found, and nothing is locked.
"""

import time

from conftest import Client
from dnsserver import dnsmasq, reversed_name  # noqa: F401  (fixtures)
from scanners import harmless_message, send_message


def deliver(p, source, **kw):
    c = Client(p.port, source=source)
    assert c.greeting(timeout=8).code == 220
    assert c.cmd("EHLO mail.customer.example").code == 250
    assert send_message(c, harmless_message(), **kw).code == 250
    assert c.cmd("QUIT").code == 221
    c.close()
    return c


def test_a_listed_early_talker_is_warned_about_twice_and_relayed(proxy, mta, dnsmasq, tmp_path):
    dns = dnsmasq([(reversed_name("127.0.0.111", "bl.example"), "127.0.0.2")])
    p = proxy(mta.port, policy_mode="warn", dnsbl="bl.example", dns_server=dns.address, earlytalker=True,
              earlytalker_wait=0.5, lock_on="dnsbl,earlytalk", lock_duration=600,
              state_store=f"sqlite:{tmp_path}/state.db", control_path=f"{tmp_path}/control.sock", nat_sources="192.0.2.1")
    c = Client(p.port, source="127.0.0.111")
    c.send(b"EHLO early.test\r\n")
    g = c.read_reply(timeout=8)
    assert g.code == 220, g
    assert c.read_reply().code == 250, "the early EHLO went on to the MTA"
    assert send_message(c, harmless_message()).code == 250
    assert c.cmd("QUIT").code == 221
    assert len(mta.wait_messages(1)) == 1
    warned = p.wait_event("reject_warning", count=2)
    assert sorted(w.get("reason") for w in warned) == ["dnsbl", "earlytalk"], warned
    assert next(w for w in warned if w.get("reason") == "dnsbl").get("sites") == "bl.example"
    assert p.events("reject") == [] and p.events("lock") == []
    time.sleep(0.3)
    deliver(p, "127.0.0.111")                 # not locked: the next session is relayed too


def test_regex_restrictions_and_rate_limits_only_warn(proxy, mta, tmp_path):
    p = proxy(mta.port, policy_mode="warn", regex_reject_mail_from="^spam@", lock_on="regex", lock_duration=600,
              recipient_restrictions="reject_non_fqdn_recipient", ratelimit_messages="1/60",
              state_store=f"sqlite:{tmp_path}/state.db", control_path=f"{tmp_path}/control.sock", nat_sources="192.0.2.1")
    deliver(p, "127.0.0.112", mail_from="spam@x.test", rcpts=("postmaster",))
    deliver(p, "127.0.0.112")                 # over ratelimit_messages 1/60
    assert len(mta.wait_messages(2)) == 2
    warned = p.wait_event("reject_warning", count=3)
    got = sorted((w.get("command"), w.get("reason")) for w in warned)
    assert got == [("mail", "ratelimit"), ("mail", "regex"), ("rcpt", "restriction")], warned
    assert p.events("reject") == [] and p.events("lock") == [] and p.events("ratelimit") == []
