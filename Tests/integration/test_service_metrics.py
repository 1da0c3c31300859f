"""Metrics of what the proxy asks other services and of forward listeners (issue 12): DNS lookups by type
and result against a real dnsmasq and a resolver answering SERVFAIL, policy-service queries against the real
postgrey (answered, then failed once it is gone), action-script runs, remote-udp questions to a helper
(found, not found, no answer), forwarded connections by result with their bytes, and the totals
``smtpgate status`` shows from the same counters. Each scrape passes promtool.
"""
import json
import os
import signal
import time

from conftest import HOST, Client, free_port, wait_until
from dnsserver import dnsmasq, reversed_name, scripted_dns  # noqa: F401  (fixtures)
from forwardkit import Backend, echo_roundtrip, echo_handler, run_cli, sectioned
from test_metrics import admin_proxy, promtool_check, samples, scrape, send_one, value
from test_postgrey import attempt, postgrey  # noqa: F401  (fixture)
from test_remote_udp import FakeHelper, legacy_reply, remote_proxy


def histogram_count(text, name, **labels):
    return value(text, name + "_count", **labels)


def test_dns_lookups_count_by_type_and_result_and_cached_answers_are_said(proxy, mta, dnsmasq):
    dns = dnsmasq([(reversed_name("127.0.0.40", "bl1.example"), "127.0.0.2")])
    p = admin_proxy(proxy, mta, dnsbl="bl1.example", dns_server=dns.address)
    listed = Client(p.port, source="127.0.0.40")
    assert listed.read_reply(timeout=8).code == 554
    listed.close()
    for _ in range(2):
        clean = Client(p.port, source="127.0.0.41")
        assert clean.greeting().code == 220
        clean.cmd("QUIT")
        clean.close()
    p.wait_event("close", count=3)
    text = scrape(p)
    promtool_check(text)
    assert value(text, "smtpgate_dns_lookups_total", type="a", result="records") == 1, "the listing"
    assert value(text, "smtpgate_dns_lookups_total", type="a", result="nxdomain") == 1, "the clean client, asked once"
    assert value(text, "smtpgate_dns_lookups_total", type="a", result="cached") == 1, "its second connection"
    assert histogram_count(text, "smtpgate_dns_lookup_duration_seconds", type="a") == 2, "only what was sent is timed"
    assert value(text, "smtpgate_refusals_total", listener="main", cause="dnsbl") == 1


def test_a_resolver_answering_servfail_is_counted_as_such(proxy, mta, scripted_dns):
    bad = scripted_dns("servfail")
    p = admin_proxy(proxy, mta, dnsbl="bl1.example", dns_server=bad.address)
    c = Client(p.port, source="127.0.0.42")
    assert c.greeting(timeout=8).code == 220, "a failing blocklist lets the client through"
    c.cmd("QUIT")
    c.close()
    p.wait_event("close")
    text = scrape(p)
    assert value(text, "smtpgate_dns_lookups_total", type="a", result="servfail") == 1
    assert value(text, "smtpgate_dns_lookups_total", type="a", result="records") == 0


def test_policy_service_queries_are_answered_then_failed_when_postgrey_is_gone(proxy, mta, postgrey):
    proc, port = postgrey
    service = f"inet:127.0.0.1:{port}"
    p = admin_proxy(proxy, mta, recipient_restrictions=f"check_policy_service {{ {service}, timeout=2s, try_limit=1 }}")
    c, r = attempt(p, "127.0.0.131")
    assert r.code == 450, r
    c.cmd("QUIT")
    c.close()
    text = scrape(p)
    assert value(text, "smtpgate_policy_service_queries_total", service=service, result="answered") == 1
    assert histogram_count(text, "smtpgate_policy_service_duration_seconds", service=service) == 1
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    c, r = attempt(p, "127.0.0.132")
    assert r.code == 250, "default_action DUNNO"
    c.cmd("QUIT")
    c.close()
    text = scrape(p)
    promtool_check(text)
    assert value(text, "smtpgate_policy_service_queries_total", service=service, result="failed") == 1
    assert value(text, "smtpgate_policy_service_queries_total", service=service, result="answered") == 1
    assert histogram_count(text, "smtpgate_policy_service_duration_seconds", service=service) == 2


def test_action_script_runs_count_by_how_they_ended(proxy, mta, tmp_path):
    script = tmp_path / "action.sh"
    script.write_text("#!/bin/sh\nexit 3\n")
    script.chmod(0o755)
    p = admin_proxy(proxy, mta, regex_reject_mail_from=r"^spam@", action_script=str(script))
    c = Client(p.port, source="127.0.0.98")
    assert c.greeting().code == 220
    assert c.cmd("EHLO x.test").code == 250
    assert c.cmd("MAIL FROM:<spam@x.test>").code == 550
    c.cmd("QUIT")
    c.close()
    wait_until(lambda: value(scrape(p), "smtpgate_action_runs_total", result="exit_nonzero") == 1, 10,
               what="the script's run counted")
    assert value(scrape(p), "smtpgate_action_runs_total", result="ok") == 0


def test_a_lock_added_by_hand_is_counted_as_an_admin_lock(proxy, mta, tmp_path):
    p = admin_proxy(proxy, mta, lock_on="virus", state_store=f"sqlite:{tmp_path}/state.db",
                    control_path=f"{tmp_path}/control.sock")
    assert value(scrape(p), "smtpgate_locks_created_total", cause="admin") == 0
    r = run_cli("locks", "add", "127.0.0.7", "--reason", "abuse desk", "--config", p.config_path)
    assert r.returncode == 0, r.stderr
    text = scrape(p)
    promtool_check(text)
    assert value(text, "smtpgate_locks_created_total", cause="admin") == 1
    assert value(text, "smtpgate_locks_active") == 1


def test_remote_udp_questions_count_found_not_found_and_unanswered(proxy, mta):
    answers = iter(["found", "not_found"])

    def answer(q):
        kind = next(answers, None)
        if kind is None:
            return None
        return legacy_reply(q, ("192.0.2.7", 4242), (HOST, mta.port), found=kind == "found")

    helper = FakeHelper(answer)
    try:
        port = free_port()
        p = remote_proxy(proxy, helper, admin_listen=f"{HOST}:{port}", remote_udp_retries=1)
        p.admin_port = port
        wait_until(lambda: p.events("admin_listen"), what="admin_listen line")
        codes = []
        for _ in range(3):
            c = p.connect()
            codes.append(c.read_reply(timeout=5).code)
            c.close()
        assert codes == [220, 421, 421]
        wait_until(lambda: histogram_count(scrape(p), "smtpgate_remote_udp_lookup_duration_seconds") == 3,
                   what="three lookups timed")
        text = scrape(p)
        promtool_check(text)
        got = {r: value(text, "smtpgate_remote_udp_lookups_total", result=r) for r in ("found", "not_found", "timeout", "error")}
        assert got == {"found": 1, "not_found": 1, "timeout": 1, "error": 0}, got
    finally:
        helper.close()


def test_forwards_count_by_result_and_status_shows_the_same_totals(proxy, mta):
    with Backend(echo_handler) as echo:
        p = proxy(mta.port, start=False)
        smtp_port, fwd_port, admin_port = free_port(), free_port(), free_port()
        p.port, p.admin_port = smtp_port, admin_port
        sectioned(p, f"""# written by test_service_metrics.py
pidfile {p.pidfile}
control_path {p.control_path}
admin_listen {HOST}:{admin_port}
bind_address {HOST}
fixed_server {HOST}
fixed_server_port {mta.port}

[listener in]
port {smtp_port}
mode fixed

[forward web]
port {fwd_port}
mode fixed
fixed_server_port {echo.port}
deny 127.0.0.77
""", wait_ports=[fwd_port])
        got, _ = echo_roundtrip(fwd_port, b"ping")
        assert got == b"ping"
        denied = Client(fwd_port, source="127.0.0.77")
        denied.wait_closed()
        denied.close()
        send_one(p, mta)
        p.wait_event("close")
        wait_until(lambda: len(p.events("forward")) == 2, what="two forward lines")
        text = scrape(p)
        promtool_check(text)
        assert value(text, "smtpgate_forwards_total", listener="web", result="done-remote-closed") == 1
        assert value(text, "smtpgate_forwards_total", listener="web", result="denied") == 1
        assert value(text, "smtpgate_bytes_total", listener="web", direction="from_client") == 4
        assert value(text, "smtpgate_bytes_total", listener="web", direction="to_client") == 4
        assert not any(n == "smtpgate_sessions_total" and dict(l).get("listener") == "web" for (n, l) in samples(text))

        r = run_cli("status", "--json", "--config", p.config_path, timeout=15)
        assert r.returncode == 0, r.stderr
        s = json.loads(r.stdout)
        rows = {l["name"]: l for l in s["listeners"]}
        assert (rows["web"]["ended"], rows["web"]["refused"], rows["web"]["bytes_in"]) == (2, 1, 4), rows["web"]
        assert (rows["in"]["ended"], rows["in"]["refused"], rows["in"]["transactions"]) == (1, 0, 1), rows["in"]
        assert rows["in"]["bytes_in"] == value(text, "smtpgate_bytes_total", listener="in", direction="from_client")
        assert s["counters"]["smtpgate_sessions_total"] == 1 and s["counters"]["smtpgate_forwards_total"] == 2, s["counters"]
        human = run_cli("status", "--config", p.config_path, timeout=15).stdout.decode()
        assert "ENDED  REFUSED  TRANS" in human, human
