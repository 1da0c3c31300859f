"""The admin listener (issue 12): ``/metrics`` checked by promtool and parsed by prometheus_client while
sessions, refusals and mail move the counters; ``/healthz``; the allow list; 404 and 405; and the HTML status
page in a real headless Chromium, with a hostile HELO shown as text and a screenshot kept with the run.
"""
import http.client
import os
import shutil
import subprocess

import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import HOST, free_port, start, wait_until


def admin_proxy(proxy, mta, **options):
    port = free_port()
    p = proxy(mta.port, admin_listen=f"{HOST}:{port}", log_helo="yes", **options)
    p.admin_port = port
    wait_until(lambda: p.events("admin_listen"), what="admin_listen line")
    return p


def get(p, path, method="GET"):
    c = http.client.HTTPConnection(HOST, p.admin_port, timeout=10)
    try:
        c.request(method, path)
        r = c.getresponse()
        return r.status, dict(r.getheaders()), r.read()
    finally:
        c.close()


def samples(text):
    """{(name, frozenset(labels)): value} of every sample, parsed by Prometheus's own Python client."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(text, name, **labels):
    return samples(text).get((name, frozenset(labels.items())), 0)


def scrape(p):
    status, headers, body = get(p, "/metrics")
    assert status == 200, body
    assert headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return body.decode()


def promtool_check(text):
    r = subprocess.run(["promtool", "check", "metrics"], input=text.encode(), capture_output=True, timeout=30)
    assert r.returncode == 0, f"promtool: {r.stdout.decode()} {r.stderr.decode()}\n{text}"


def send_one(p, mta):
    c = start(p)
    assert c.cmd("MAIL FROM:<a@example.org>").code == 250
    assert c.cmd("RCPT TO:<b@example.net>").code == 250
    assert c.cmd("DATA").code == 354
    assert c.cmd("Subject: m\r\n\r\nbody\r\n.").code == 250
    assert c.cmd("QUIT").code == 221
    c.close()


def test_metrics_move_with_sessions_and_refusals_and_pass_promtool(proxy, mta):
    p = admin_proxy(proxy, mta, max_per_host=1)
    before = scrape(p)
    promtool_check(before)
    builds = [v for (name, _), v in samples(before).items() if name == "smtpgate_build_info"]
    assert builds == [1], "one build_info series, always 1"
    assert value(before, "smtpgate_sessions_open", listener="main") == 0

    held = start(p)
    refused = p.connect()
    assert refused.greeting().code == 554, "max_per_host 1 refuses the second"
    refused.close()
    during = scrape(p)
    assert value(during, "smtpgate_sessions_open", listener="main") == 1
    assert value(during, "smtpgate_refusals_total", listener="main", cause="max_per_host") == 1
    held.cmd("QUIT")
    held.close()
    p.wait_event("close", count=2)

    send_one(p, mta)
    p.wait_event("close", count=3)
    after = scrape(p)
    promtool_check(after)
    ended = {dict(labels)["closed_by"]: v for (name, labels), v in samples(after).items() if name == "smtpgate_sessions_total"}
    assert sum(ended.values()) == 3 and set(ended) <= {"client", "server", "proxy"}, ended
    assert value(after, "smtpgate_sessions_total", listener="main", closed_by="proxy") == 1, "the refused one"
    assert value(after, "smtpgate_transactions_total", listener="main", reply_class="2xx") == 1
    assert value(after, "smtpgate_recipients_total", listener="main", reply_class="2xx") == 1
    mta.wait_messages(1)
    sent = len("MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\nDATA\r\nSubject: m\r\n\r\nbody\r\n.\r\n")
    assert value(after, "smtpgate_bytes_total", listener="main", direction="from_client") > sent
    assert value(after, "smtpgate_bytes_total", listener="main", direction="to_client") > 0
    assert value(after, "smtpgate_sessions_open", listener="main") == 0
    assert "client" not in {k for (_, labels) in samples(after) for k, _ in labels}, "never a client label"


def test_recipient_refusals_count_by_reply_class(proxy, mta):
    p = admin_proxy(proxy, mta, recipient_restrictions="reject")
    c = start(p)
    assert c.cmd("MAIL FROM:<a@example.org>").code == 250
    assert c.cmd("RCPT TO:<b@example.net>").code == 554
    c.cmd("QUIT")
    c.close()
    p.wait_event("close")
    text = scrape(p)
    assert value(text, "smtpgate_command_refusals_total", listener="main", command="rcpt") == 1
    promtool_check(text)


def test_health_and_unknown_paths_and_methods(proxy, mta):
    p = admin_proxy(proxy, mta)
    status, _, body = get(p, "/healthz")
    assert (status, body) == (200, b"ok\n")
    assert get(p, "/nothing-here")[0] == 404
    assert get(p, "/metrics", method="POST")[0] == 405
    status, headers, body = get(p, "/metrics", method="HEAD")
    assert status == 200 and body == b"" and int(headers["Content-Length"]) > 0


def test_a_client_outside_admin_allow_gets_403_and_no_metrics(proxy, mta):
    p = admin_proxy(proxy, mta, admin_allow="10.77.0.0/16")
    status, _, body = get(p, "/metrics")
    assert status == 403 and b"smtpgate_" not in body
    assert get(p, "/")[0] == 403


def chromium():
    for name in ("chromium", "chromium-browser"):
        if shutil.which(name):
            return shutil.which(name)
    pytest.fail("chromium is not installed (scripts/deps.sh installs it)")


def browse(tmp_path, url, *args):
    profile = tmp_path / "chromium-profile"
    cmd = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions",
           "--disable-background-networking", "--disable-sync", "--disable-component-update",
           f"--user-data-dir={profile}", *args, url]
    r = subprocess.run(cmd, capture_output=True, timeout=90, env={**os.environ, "HOME": str(tmp_path)})
    assert r.returncode == 0, r.stderr.decode()[-2000:]
    return r.stdout.decode()


def test_the_status_page_in_chromium_shows_open_sessions_and_a_hostile_helo_as_text(proxy, mta, tmp_path):
    p = admin_proxy(proxy, mta)
    hostile = "<script>document.title='pwned'</script><img src=x onerror=alert(1)>"
    c = p.connect()
    assert c.greeting().code == 220
    assert c.cmd(f"EHLO {hostile}").code == 250
    assert c.cmd("MAIL FROM:<a@example.org>").code == 250
    sid = p.session_id(c.local)
    url = f"http://{HOST}:{p.admin_port}/"
    dom = browse(tmp_path, url, "--dump-dom")
    assert sid in dom and c.local in dom, dom[-3000:]
    assert "&lt;script&gt;document.title='pwned'&lt;/script&gt;" in dom, "the HELO is text in the page"
    assert "<script" not in dom and "<img" not in dom, "no element came from the client"
    assert "pwned" not in dom.split("<title>")[1].split("</title>")[0]
    shot = tmp_path / "status-page.png"
    browse(tmp_path, url, f"--screenshot={shot}", "--window-size=1280,900")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    keep = os.environ.get("SMTPGATE_ARTIFACTS")
    if keep:
        os.makedirs(keep, exist_ok=True)
        shutil.copy(shot, os.path.join(keep, "status-page.png"))
    c.cmd("QUIT")
    c.close()


ROOT = os.path.join(os.path.dirname(__file__), "..", "..")


def test_the_example_scrape_config_and_alert_rules_pass_promtool():
    examples = os.path.join(ROOT, "Examples")
    for args in (["check", "config", "prometheus.yml"], ["check", "rules", "smtpgate-alerts.yml"]):
        r = subprocess.run(["promtool", *args], cwd=examples, capture_output=True, timeout=30)
        assert r.returncode == 0, r.stdout.decode() + r.stderr.decode()


def test_every_metric_is_in_the_man_page_and_every_alert_uses_a_real_one():
    import re
    source = open(os.path.join(ROOT, "Sources/SMTPGateCore/Metrics/MetricFamily.swift")).read()
    names = set(re.findall(r'= "(smtpgate_[a-z_]+)"', source))
    assert len(names) >= 15
    man = open(os.path.join(ROOT, "man/smtpgate.8")).read()
    helper_man = open(os.path.join(ROOT, "man/smtpgate-helper.8")).read()
    missing = sorted(n for n in names if f".B {n}" not in (helper_man if n.startswith("smtpgate_helper_") else man))
    assert not missing, f"not in smtpgate(8) METRICS or smtpgate-helper(8) --admin-listen: {missing}"
    rules = open(os.path.join(ROOT, "Examples/smtpgate-alerts.yml")).read()
    used = set(re.findall(r"\b(smtpgate_[a-z_]+)", rules))
    assert used and used <= names, used - names
