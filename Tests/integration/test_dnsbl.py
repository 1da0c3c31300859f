"""``dnsbl`` with the real daemon, the aiosmtpd MTA and a real dnsmasq on loopback (``dns_server``): a listed
client gets Postfix's 554 5.7.1 and never reaches the MTA's dialogue, a clean one (NXDOMAIN) is relayed,
weights add up against ``dnsbl_threshold`` (a negative weight allow-lists), the default filter never counts
127.0.0.1 or 127.255.255.0/24 and ``=FILTER`` narrows what counts, ``lock_on dnsbl`` locks a listed client,
an IPv6 client is asked by its nibbles, a reload changes the sites, a resolver that never answers
(``timeout_dns``) or answers SERVFAIL counts nothing and is logged once a minute per zone, the lookups run
while the upstream connects (the greeting waits for the slower), what a client sends during the lookups
reaches the MTA only if it is not listed, and ``check-config`` / ``run`` refuse bad values naming the line.

Clients connect from chosen 127.0.0.0/8 addresses in mode fixed, so the peer is the real client and it is
the address looked up (client 127.0.0.40 -> ``40.0.0.127.ZONE``).
"""

import base64
import re
import signal
import subprocess
import time

import pytest

from conftest import AUTH_PASS, AUTH_USER, PROXY_NAME, SMTPGATE_BIN, Client, free_port, has_ipv6_loopback, port_listening, wait_until
from dnsserver import dnsmasq, reversed_name, scripted_dns  # noqa: F401  (fixtures)
from scanners import harmless_message, send_message

BL1, BL2, WL = "bl1.example", "bl2.example", "wl.example"


def blocked(client, zone):
    return f"554 5.7.1 Service unavailable; client [{client}] blocked using {zone}"


def listing(client, zone, answer="127.0.0.2"):
    return (reversed_name(client, zone), answer)


def dnsbl_proxy(proxy, mta, dns, sites, **kw):
    return proxy(mta.port, dnsbl=sites, dns_server=dns.address, **kw)


def assert_refused(p, mta, source, zone, score, threshold, sites):
    """The client's one reply is the listing, the connection closes, and the MTA hears no command."""
    conns_before = len(mta.conns)
    c = Client(p.port, source=source)
    r = c.read_reply(timeout=8)
    assert r.text == blocked(source, zone), r
    assert r.lines == [r.text], "a one-line reply"
    c.wait_closed()
    c.close()
    (rej,) = p.wait_event("reject", reason="dnsbl", timeout=5, client=c.local)
    assert (rej.get("score"), rej.get("threshold"), rej.get("sites")) == (str(score), str(threshold), sites), rej
    (close,) = p.wait_event("close", session=rej.get("session"))
    assert close.get("reason") == "dnsbl", close
    time.sleep(0.3)
    assert all(not conn.raw for conn in mta.conns[conns_before:]), "no byte of the client reached the MTA"
    return rej


def assert_relayed(p, mta, source, timeout=8):
    """The MTA's greeting reaches the client, and a message goes through."""
    before = len(mta.messages)
    c = Client(p.port, source=source)
    g = c.greeting(timeout=timeout)
    assert g.code == 220 and mta.hostname in g.text, g
    assert c.cmd("EHLO clean.test").code == 250
    assert send_message(c, harmless_message()).code == 250
    assert c.cmd("QUIT").code == 221
    c.close()
    mta.wait_messages(before + 1)
    assert [r for r in p.events("reject") if r.get("client") == c.local] == [], "not refused"
    return c


# --------------------------------------------------------------------------
# listed and clean
# --------------------------------------------------------------------------

def test_a_listed_client_is_refused_with_554_and_the_mta_hears_no_command(proxy, mta, dnsmasq):
    dns = dnsmasq([listing("127.0.0.40", BL1)])
    p = dnsbl_proxy(proxy, mta, dns, BL1)
    assert_refused(p, mta, "127.0.0.40", BL1, score=1, threshold=1, sites=BL1)
    assert mta.messages == []
    assert dns.queries() == ["40.0.0.127.bl1.example"], "one A question for the reversed address"


def test_a_clean_client_gets_the_mta_greeting_and_is_relayed(proxy, mta, dnsmasq):
    dns = dnsmasq([listing("127.0.0.40", BL1)])          # someone else is listed
    p = dnsbl_proxy(proxy, mta, dns, BL1)
    assert_relayed(p, mta, "127.0.0.41")
    assert len(mta.messages) == 1
    assert p.events("reject") == [] and p.events("dnsbl_error") == []
    assert dns.queries() == ["41.0.0.127.bl1.example"], "NXDOMAIN was the answer"


# --------------------------------------------------------------------------
# weights and the threshold
# --------------------------------------------------------------------------

def test_weights_add_up_against_the_threshold(proxy, mta, dnsmasq):
    dns = dnsmasq([listing("127.0.0.42", BL1),
                   listing("127.0.0.43", BL1), listing("127.0.0.43", BL2)])
    p = dnsbl_proxy(proxy, mta, dns, f"{BL1}*2,{BL2}", dnsbl_threshold=3)
    assert_relayed(p, mta, "127.0.0.42")                  # 2 < 3
    assert len(mta.messages) == 1
    # 2 + 1 = 3: refused, the reply names the heaviest zone, the log both in the option's order
    assert_refused(p, mta, "127.0.0.43", BL1, score=3, threshold=3, sites=f"{BL1},{BL2}")
    assert len(mta.messages) == 1


def test_smtp_gated_plain_list_counts_each_zone_once(proxy, mta, dnsmasq):
    dns = dnsmasq([listing("127.0.0.55", BL2), listing("127.0.0.56", BL1), listing("127.0.0.56", BL2)])
    p = dnsbl_proxy(proxy, mta, dns, f"{BL1},{BL2}", dnsbl_threshold=2)
    assert_relayed(p, mta, "127.0.0.55")
    assert_refused(p, mta, "127.0.0.56", BL1, score=2, threshold=2, sites=f"{BL1},{BL2}")


def test_a_negative_weight_allow_lists_a_listed_client(proxy, mta, dnsmasq):
    dns = dnsmasq([listing("127.0.0.44", BL1), listing("127.0.0.44", WL), listing("127.0.0.54", BL1)])
    p = dnsbl_proxy(proxy, mta, dns, f"{BL1}*2 {WL}*-5")
    assert_relayed(p, mta, "127.0.0.44")                  # 2 - 5 < 1
    assert_refused(p, mta, "127.0.0.54", BL1, score=2, threshold=1, sites=BL1)


def test_entries_of_one_zone_are_asked_once_and_each_matching_filter_adds_its_weight(proxy, mta, dnsmasq):
    # one name answering two addresses; postscreen's per-answer entries of one zone
    dns = dnsmasq([listing("127.0.0.58", BL1, "127.0.0.2"), listing("127.0.0.58", BL1, "127.0.0.3")])
    p = dnsbl_proxy(proxy, mta, dns, f"{BL1}=127.0.0.2*2,{BL1}=127.0.0.3*3,{BL1}=127.0.0.4*4", dnsbl_threshold=5)
    assert_refused(p, mta, "127.0.0.58", BL1, score=5, threshold=5, sites=BL1)
    assert dns.queries() == ["58.0.0.127.bl1.example"], "one question for the zone, however many entries"


# --------------------------------------------------------------------------
# filters
# --------------------------------------------------------------------------

def test_the_default_filter_never_counts_127_0_0_1_or_127_255_255_x(proxy, mta, dnsmasq):
    dns = dnsmasq([listing("127.0.0.45", BL1, "127.0.0.1"), listing("127.0.0.46", BL1, "127.255.255.254"),
                   listing("127.0.0.57", BL1, "127.0.0.11")])
    p = dnsbl_proxy(proxy, mta, dns, BL1)
    assert_relayed(p, mta, "127.0.0.45")
    assert_relayed(p, mta, "127.0.0.46")
    assert p.events("dnsbl_error") == [], "a query-error answer is not a failed lookup either"
    assert_refused(p, mta, "127.0.0.57", BL1, score=1, threshold=1, sites=BL1)


def test_an_explicit_filter_counts_only_the_answers_it_names(proxy, mta, dnsmasq):
    dns = dnsmasq([listing("127.0.0.47", BL1, "127.0.0.10"), listing("127.0.0.48", BL1, "127.0.0.2")])
    p = dnsbl_proxy(proxy, mta, dns, f"{BL1}=127.0.0.[2..3]")
    assert_relayed(p, mta, "127.0.0.47")
    assert_refused(p, mta, "127.0.0.48", BL1, score=1, threshold=1, sites=BL1)


# --------------------------------------------------------------------------
# lock_on dnsbl
# --------------------------------------------------------------------------

def test_lock_on_dnsbl_locks_the_listed_client(proxy, mta, dnsmasq, tmp_path):
    dns = dnsmasq([listing("127.0.0.49", BL1)])
    p = dnsbl_proxy(proxy, mta, dns, BL1, lock_on="dnsbl", lock_duration=600,
                    state_store=f"sqlite:{tmp_path}/state.db", control_path=f"{tmp_path}/control.sock",
                    nat_sources="192.0.2.1")
    assert_refused(p, mta, "127.0.0.49", BL1, score=1, threshold=1, sites=BL1)
    (lock,) = p.wait_event("lock", key="127.0.0.49")
    assert lock.get("lock_cause") == "dnsbl", lock
    assert lock.get("reason") == f"dnsbl score 1 ({BL1})", lock
    again = Client(p.port, source="127.0.0.49")
    r = again.read_reply(timeout=3)
    assert re.match(rf"554 5\.7\.1 {PROXY_NAME}: your address is locked \(dnsbl\) until \d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d UTC$",
                    r.text), r
    again.wait_closed()
    (rej,) = p.wait_event("reject", reason="locked")
    assert rej.get("client").startswith("127.0.0.49:") and rej.get("lock_cause") == "dnsbl", rej
    assert len(p.events("reject", reason="dnsbl")) == 1, "the lock refuses before any lookup is scored"
    assert_relayed(p, mta, "127.0.0.50")                  # another client is neither listed nor locked


# --------------------------------------------------------------------------
# auth_skip dnsbl: a listed client may still send once it has authenticated
# --------------------------------------------------------------------------

def plain_auth():
    return "AUTH PLAIN " + base64.b64encode(b"\0" + AUTH_USER.encode() + b"\0" + AUTH_PASS.encode()).decode()


def test_auth_skip_dnsbl_greets_a_listed_client_and_refuses_its_mail_until_it_authenticates(proxy, mta, dnsmasq):
    dns = dnsmasq([listing("127.0.0.69", BL1)])
    p = dnsbl_proxy(proxy, mta, dns, BL1, auth_skip="dnsbl")
    c = Client(p.port, source="127.0.0.69")
    g = c.greeting(timeout=8)
    assert g.code == 220 and mta.hostname in g.text, g
    assert c.cmd("EHLO roaming.test").code == 250
    # aiosmtpd offers no ENHANCEDSTATUSCODES: the reply carries none.
    listed = f"554 Service unavailable; client [127.0.0.69] blocked using {BL1}"
    assert c.cmd("MAIL FROM:<anon@x.test>").text == listed
    assert c.cmd("RCPT TO:<b@x.test>").code == 503
    assert c.cmd("RSET").code == 250
    assert c.cmd("MAIL FROM:<anon@x.test>").text == listed, "refused again, reported once"
    assert c.cmd(plain_auth()).code == 235
    assert send_message(c, harmless_message(), mail_from="roamer@x.test").code == 250
    assert c.cmd("QUIT").code == 221
    c.wait_closed()
    (m,) = mta.wait_messages(1)
    assert m.mail_from == "roamer@x.test" and b"anon@x.test" not in bytes(m.conn.raw)
    (rej,) = p.wait_event("reject", reason="dnsbl")
    assert (rej.get("score"), rej.get("sites")) == ("1", BL1), rej
    (close,) = p.wait_event("close", session=rej.get("session"))
    assert close.get("reason") == "quit" and close.get("trans") == "1", close
    assert len(p.events("reject")) == 1


def test_auth_skip_dnsbl_relays_a_clean_client_without_auth(proxy, mta, dnsmasq):
    dns = dnsmasq([listing("127.0.0.70", BL1)])
    p = dnsbl_proxy(proxy, mta, dns, BL1, auth_skip="dnsbl")
    assert_relayed(p, mta, "127.0.0.71")


def test_auth_skip_dnsbl_with_lock_on_dnsbl_locks_at_the_refused_mail(proxy, mta, dnsmasq, tmp_path):
    dns = dnsmasq([listing("127.0.0.72", BL1)])
    p = dnsbl_proxy(proxy, mta, dns, BL1, auth_skip="dnsbl", lock_on="dnsbl", lock_duration=600,
                    state_store=f"sqlite:{tmp_path}/state.db", control_path=f"{tmp_path}/control.sock",
                    nat_sources="192.0.2.1")
    c = Client(p.port, source="127.0.0.72")
    assert c.greeting(timeout=8).code == 220
    assert c.cmd("EHLO roaming.test").code == 250
    assert p.events("lock") == [], "greeted: nothing is held against it yet"
    assert c.cmd("MAIL FROM:<anon@x.test>").code == 554
    (lock,) = p.wait_event("lock", key="127.0.0.72")
    assert lock.get("lock_cause") == "dnsbl" and lock.get("reason") == f"dnsbl score 1 ({BL1})", lock
    c.close()
    again = Client(p.port, source="127.0.0.72")
    assert again.read_reply(timeout=3).text.startswith(f"554 5.7.1 {PROXY_NAME}: your address is locked (dnsbl)")


# --------------------------------------------------------------------------
# the JSON log, IPv6, reload
# --------------------------------------------------------------------------

def test_the_json_log_has_the_reject_fields_typed(proxy, mta, dnsmasq):
    dns = dnsmasq([listing("127.0.0.62", BL1), listing("127.0.0.62", BL2)])
    p = proxy(mta.port, log_format="json", dnsbl=f"{BL1} {BL2}*4", dns_server=dns.address, dnsbl_threshold=2)
    c = Client(p.port, source="127.0.0.62")
    assert c.read_reply(timeout=8).text == blocked("127.0.0.62", BL2)
    c.wait_closed()
    (rej,) = p.wait_event("reject", reason="dnsbl")
    assert (rej.json["score"], rej.json["threshold"], rej.json["sites"]) == (5, 2, f"{BL1},{BL2}"), rej


@pytest.mark.skipif(not has_ipv6_loopback(), reason="no IPv6 loopback")
def test_an_ipv6_client_is_looked_up_by_its_reversed_nibbles(proxy, mta, dnsmasq):
    name = "1." + "0." * 31 + BL1             # ::1, RFC 5782 section 2.4
    dns = dnsmasq([(name, "127.0.0.2")])
    p = proxy(mta.port, bind_address="::1", dnsbl=BL1, dns_server=dns.address)
    c = Client(p.port, host="::1")
    r = c.read_reply(timeout=8)
    assert r.text == blocked("::1", BL1), r
    c.wait_closed()
    (rej,) = p.wait_event("reject", reason="dnsbl")
    assert rej.get("client").startswith("[::1]:") and rej.get("sites") == BL1, rej
    assert dns.queries() == [name]


def test_a_reload_changes_the_sites_for_new_sessions(proxy, mta, dnsmasq):
    dns = dnsmasq([listing("127.0.0.67", BL1), listing("127.0.0.68", BL2)])
    p = dnsbl_proxy(proxy, mta, dns, BL1)
    assert_refused(p, mta, "127.0.0.67", BL1, score=1, threshold=1, sites=BL1)
    assert_relayed(p, mta, "127.0.0.68")
    p.options["dnsbl"] = BL2
    p.write_config()
    p.signal(signal.SIGHUP)
    wait_until(lambda: [r for r in p.events("reload") if "ok" in r.words or r.get("result") == "ok"],
               what="reload ok")
    assert_relayed(p, mta, "127.0.0.67")
    assert_refused(p, mta, "127.0.0.68", BL2, score=1, threshold=1, sites=BL2)
    p.options["dnsbl"] = "none"
    p.write_config()
    p.signal(signal.SIGHUP)
    wait_until(lambda: len([r for r in p.events("reload") if "ok" in r.words or r.get("result") == "ok"]) == 2,
               what="second reload ok")
    assert_relayed(p, mta, "127.0.0.68")


# --------------------------------------------------------------------------
# a resolver that cannot answer
# --------------------------------------------------------------------------

def test_a_silent_resolver_counts_nothing_after_timeout_dns_and_is_logged_once_a_minute(proxy, mta, scripted_dns):
    dns = scripted_dns("silent")
    p = dnsbl_proxy(proxy, mta, dns, BL1, timeout_dns=1)
    t0 = time.monotonic()
    c = Client(p.port, source="127.0.0.51")
    g = c.greeting(timeout=6)
    took = time.monotonic() - t0
    assert g.code == 220 and mta.hostname in g.text and 0.9 <= took < 4, (g, took)
    assert c.cmd("EHLO patient.test").code == 250
    assert send_message(c, harmless_message()).code == 250
    assert c.cmd("QUIT").code == 221
    (err,) = p.wait_event("dnsbl_error", zone=BL1)
    assert err.level == "warning" and err.get("error") == "timeout" and err.get("suppressed") == "0", err
    assert dns.questions, "the resolver was asked"
    # a second session within the minute: relayed, and no second line for the zone
    assert_relayed(p, mta, "127.0.0.52", timeout=6)
    time.sleep(0.3)
    assert len(p.events("dnsbl_error")) == 1, p.events("dnsbl_error")
    assert p.events("reject") == []
    assert len(mta.messages) == 2


def test_every_failing_zone_is_logged_once(proxy, mta, scripted_dns):
    dns = scripted_dns("silent")
    p = dnsbl_proxy(proxy, mta, dns, f"{BL1},{BL2}", timeout_dns=1)
    assert_relayed(p, mta, "127.0.0.60", timeout=6)
    assert_relayed(p, mta, "127.0.0.61", timeout=6)
    p.wait_event("dnsbl_error", count=2)
    time.sleep(0.3)
    errs = p.events("dnsbl_error")
    assert sorted(e.get("zone") for e in errs) == [BL1, BL2], errs
    assert all(e.get("error") == "timeout" for e in errs), errs


def test_a_zone_that_cannot_be_asked_does_not_save_a_client_another_zone_lists(proxy, mta, dnsmasq, scripted_dns):
    silent = scripted_dns("silent")
    dns = dnsmasq([listing("127.0.0.59", BL1)], forward={BL2: silent})
    p = dnsbl_proxy(proxy, mta, dns, f"{BL1},{BL2}", timeout_dns=1)
    t0 = time.monotonic()
    assert_refused(p, mta, "127.0.0.59", BL1, score=1, threshold=1, sites=BL1)
    assert time.monotonic() - t0 < 5
    (err,) = p.wait_event("dnsbl_error")
    assert (err.get("zone"), err.get("error")) == (BL2, "timeout"), err
    assert silent.questions, "bl2.example's questions went to the silent server"


def test_the_lookups_run_while_the_upstream_connects_and_greets(proxy, scripted_mta, scripted_dns):
    # an MTA that greets after 0.8 s and a resolver that never answers (1 s): the client waits for the
    # slower of the two, not for both one after the other
    m = scripted_mta(greet_delay=0.8)
    dns = scripted_dns("silent")
    p = proxy(m.port, dnsbl=BL1, dns_server=dns.address, timeout_dns=1)
    t0 = time.monotonic()
    c = Client(p.port, source="127.0.0.63")
    g = c.greeting(timeout=6)
    took = time.monotonic() - t0
    assert g.code == 220 and "scripted" in g.text and 0.9 <= took < 1.7, (g, took)
    assert c.cmd("QUIT").code == 221


def test_a_listed_client_that_talks_during_the_lookup_gets_554_and_the_mta_hears_nothing(proxy, mta, dnsmasq,
                                                                                         scripted_dns):
    silent = scripted_dns("silent")
    dns = dnsmasq([listing("127.0.0.64", BL1)], forward={BL2: silent})
    p = dnsbl_proxy(proxy, mta, dns, f"{BL1},{BL2}", timeout_dns=1)
    conns = len(mta.conns)
    c = Client(p.port, source="127.0.0.64")
    c.send(b"EHLO early.test\r\nMAIL FROM:<a@b.test>\r\n")
    r = c.read_reply(timeout=6)
    assert r.text == blocked("127.0.0.64", BL1), r
    c.wait_closed()
    p.wait_event("reject", reason="dnsbl")
    time.sleep(0.3)
    leaked = [bytes(conn.raw) for conn in mta.conns[conns:] if conn.raw]
    assert not leaked, f"a listed client's commands reached the MTA before its verdict: {leaked}"


def test_a_clean_client_that_talks_during_the_lookup_is_relayed_after_the_greeting(proxy, mta, scripted_dns):
    dns = scripted_dns("silent")
    p = dnsbl_proxy(proxy, mta, dns, BL1, timeout_dns=1)
    c = Client(p.port, source="127.0.0.65")
    c.send(b"EHLO early.test\r\n")
    assert c.greeting(timeout=6).code == 220
    assert c.read_reply().code == 250, "the early EHLO is relayed once the greeting is out"
    assert c.cmd("QUIT").code == 221


def test_a_servfail_answer_counts_nothing_and_is_logged(proxy, mta, scripted_dns):
    dns = scripted_dns("servfail")
    p = dnsbl_proxy(proxy, mta, dns, BL1, timeout_dns=3)
    assert_relayed(p, mta, "127.0.0.53", timeout=6)
    (err,) = p.wait_event("dnsbl_error", zone=BL1)
    assert err.get("error") == "server failure (rcode 2)", err
    assert p.events("reject") == []


# --------------------------------------------------------------------------
# configuration
# --------------------------------------------------------------------------

def check_config(path):
    r = subprocess.run([SMTPGATE_BIN, "check-config", str(path)], capture_output=True, timeout=10)
    return r.returncode, r.stdout.decode("utf-8", "replace"), r.stderr.decode("utf-8", "replace")


def write_conf(tmp_path, *lines):
    cfg = tmp_path / "dnsbl.conf"
    cfg.write_text("\n".join(["# dnsbl config", "mode fixed", "fixed_server 127.0.0.1", *lines]) + "\n")
    return cfg


BAD = [
    (["dnsbl bl1.example*500"], 4,
     "option 'dnsbl': DNSBL weight \"500\" in \"bl1.example*500\": expected a whole number from -100 to 100"),
    (["dnsbl bl1.example*-101"], 4, "expected a whole number from -100 to 100"),
    (["dnsbl bl1.example", "dnsbl_threshold 0"], 5,
     "option 'dnsbl_threshold': expected a whole number from 1 to 1000, got '0'"),
    (["dnsbl bl1.example", "dnsbl_threshold 1001"], 5, "option 'dnsbl_threshold'"),
    (["dnsbl " + ",".join(f"z{i}.example" for i in range(33))], 4, "option 'dnsbl': dnsbl has 33 sites; at most 32"),
    (["dnsbl bl1.example=127.0.0", "timeout_dns 2"], 4, "is not four octets d.d.d.d"),
    (["dnsbl bl1.example", "dns_server not-an-ip"], 5,
     "option 'dns_server': dns_server \"not-an-ip\" is not ADDRESS or ADDRESS@PORT"),
    (["dnsbl bl1.example", "dns_server 127.0.0.1@99999"], 5,
     "option 'dns_server': dns_server \"127.0.0.1@99999\": the port is not from 1 to 65535"),
    (["dns_server " + ",".join(f"127.0.0.1@{5300 + i}" for i in range(9))], 4, "at most 8"),
    (["dnsbl bl1.example=127.0.0.[3..2]"], 4, "DNSBL filter \"127.0.0.[3..2]\": the range 3..2 is empty"),
    (["dnsbl bl_1..example"], 4, "DNSBL zone \"bl_1..example\" is not a DNS name"),
    (["dnsbl bl1.example", "timeout_dns 0"], 5, "option 'timeout_dns': expected seconds greater than 0"),
    (["dnsbl bl1.example", "timeout_dns 301"], 5, "option 'timeout_dns': expected seconds greater than 0 and at most 300"),
]


@pytest.mark.parametrize("lines,line_no,msg", BAD, ids=["weight500", "weight-101", "threshold0", "threshold1001",
                                                         "33sites", "filter", "dns_server_name", "dns_server_port",
                                                         "9servers", "empty_range", "bad_zone", "timeout_dns0",
                                                         "timeout_dns301"])
def test_check_config_refuses_bad_dnsbl_values_naming_the_line(tmp_path, lines, line_no, msg):
    cfg = write_conf(tmp_path, *lines)
    rc, out, err = check_config(cfg)
    assert rc == 1, (out, err)
    (line,) = [l for l in err.splitlines() if l.startswith(f"{cfg}:{line_no}:")] or [err]
    assert msg in line, err


def test_run_refuses_a_bad_dnsbl_weight_naming_the_line(tmp_path):
    port = free_port()
    cfg = write_conf(tmp_path, "bind_address 127.0.0.1", f"port {port}", "dnsbl bl1.example*500")
    r = subprocess.run([SMTPGATE_BIN, "run", "--config", str(cfg)], capture_output=True, timeout=10)
    err = r.stderr.decode("utf-8", "replace")
    assert r.returncode != 0
    assert f"{cfg}:6:" in err and "expected a whole number from -100 to 100" in err, err
    assert not port_listening(port)


def test_check_config_accepts_good_values_and_warns_of_useless_ones(tmp_path):
    cfg = write_conf(tmp_path, f"dnsbl {BL1}=127.0.0.[2..11]*3,{BL2} {WL}*-5", "dnsbl_threshold 5",
                     "dns_server 127.0.0.1@5353,::1", "timeout_dns 2", "lock_on dnsbl", "nat_sources 192.0.2.1")
    rc, out, err = check_config(cfg)
    assert rc == 0, err
    eff = dict(l.split(" ", 1) for l in out.splitlines() if l.strip() and not l.startswith("#"))
    assert eff["dnsbl"] == f"{BL1}=127.0.0.[2..11]*3 {BL2} {WL}*-5"
    assert (eff["dnsbl_threshold"], eff["dns_server"]) == ("5", "127.0.0.1@5353,::1")
    assert float(eff["timeout_dns"]) == 2
    assert f"{cfg}: warning: dnsbl_threshold 5 is more than all positive dnsbl weights together" in err, err
    cfg = write_conf(tmp_path, "lock_on dnsbl", "nat_sources 192.0.2.1")
    rc, out, err = check_config(cfg)
    assert rc == 0, err
    assert f"{cfg}: warning: lock_on names dnsbl but no dnsbl sites are set" in err, err
