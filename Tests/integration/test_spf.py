"""``spf`` with the real daemon and a real dnsmasq serving SPF TXT records on loopback: a sender whose record
does not allow the client gets 550 5.7.23 at MAIL (logged ``spf result=fail``, ``lock_on spf`` locks), an
allowed one is relayed with a Received-SPF header when asked for, a resolver that cannot answer is a 451
4.7.24, ``spf_log_only`` refuses nothing, and ``spf fixed`` checks spf_fixed_ip instead of the client.
"""

from conftest import Client
from dnsserver import dnsmasq, scripted_dns  # noqa: F401  (fixtures)
from scanners import harmless_message, send_message

RECORDS = [("customer.example", "v=spf1 ip4:127.0.0.151 ip4:192.0.2.77 -all"),
           ("soft.example", "v=spf1 ip4:127.0.0.151 ~all"),
           ("nested.example", "v=spf1 include:customer.example -all")]


def session(p, source):
    c = Client(p.port, source=source)
    assert c.greeting(timeout=8).code == 220
    assert c.cmd("EHLO pc.customer.example").code == 250
    return c


def test_a_failing_sender_is_refused_at_mail_and_a_passing_one_is_relayed_with_received_spf(proxy, mta, dnsmasq):
    dns = dnsmasq(txt=RECORDS)
    p = proxy(mta.port, spf="incoming", dns_server=dns.address, spf_received_header=True)
    bad = session(p, "127.0.0.152")
    # aiosmtpd offers no ENHANCEDSTATUSCODES: the reply carries none.
    r = bad.cmd("MAIL FROM:<alice@customer.example>")
    assert r.text.startswith("550 ") and "SPF validation failed: alice@customer.example is not allowed to send from [127.0.0.152]" in r.text, r
    assert bad.cmd("MAIL FROM:<alice@soft.example>").code == 250, "softfail only logs"
    bad.cmd("QUIT")
    good = session(p, "127.0.0.151")
    assert send_message(good, harmless_message(), mail_from="alice@nested.example").code == 250
    (m,) = mta.wait_messages(1)
    first = m.content.split(b"\r\n", 1)[0].decode()
    assert first.startswith("Received-SPF: pass (") and "client-ip=127.0.0.151;" in first \
        and "envelope-from=alice@nested.example;" in first, first
    results = sorted(e.get("result") for e in p.wait_event("spf", count=3))
    assert results == ["fail", "pass", "softfail"], results
    (rej,) = p.wait_event("reject", command="mail")
    assert rej.get("reason") == "spf" and rej.get("code") == "550", rej


def test_a_silent_resolver_is_a_temporary_refusal_and_log_only_refuses_nothing(proxy, mta, scripted_dns):
    silent = scripted_dns("silent")
    p = proxy(mta.port, spf="incoming", dns_server=silent.address, timeout_dns=1)
    c = session(p, "127.0.0.153")
    r = c.cmd("MAIL FROM:<alice@customer.example>", timeout=6)
    assert r.text.startswith("451 ") and "SPF validation error (temporary)" in r.text, r
    q = proxy(mta.port, spf="incoming", dns_server=silent.address, timeout_dns=1, spf_log_only=True)
    d = session(q, "127.0.0.153")
    assert send_message(d, harmless_message(), mail_from="alice@customer.example").code == 250
    (s,) = q.wait_event("spf")
    assert s.get("result") == "temperror", s


def test_spf_fixed_checks_the_given_address_and_lock_on_spf_locks(proxy, mta, dnsmasq, tmp_path):
    dns = dnsmasq(txt=RECORDS)
    p = proxy(mta.port, spf="fixed", spf_fixed_ip="192.0.2.77", dns_server=dns.address)
    c = session(p, "127.0.0.154")
    assert send_message(c, harmless_message(), mail_from="alice@customer.example").code == 250, \
        "192.0.2.77 is allowed, whoever the client is"
    q = proxy(mta.port, spf="incoming", dns_server=dns.address, lock_on="spf", lock_duration=600,
              state_store=f"sqlite:{tmp_path}/state.db", control_path=f"{tmp_path}/control.sock", nat_sources="192.0.2.1")
    d = session(q, "127.0.0.155")
    assert d.cmd("MAIL FROM:<alice@customer.example>").code == 550
    (lock,) = q.wait_event("lock", key="127.0.0.155")
    assert lock.get("lock_cause") == "spf" and lock.get("reason") == "spf fail (customer.example)", lock


def test_auth_skip_spf_spares_an_authenticated_client(proxy, mta, dnsmasq):
    import base64
    from conftest import AUTH_PASS, AUTH_USER
    dns = dnsmasq(txt=RECORDS)
    p = proxy(mta.port, spf="incoming", dns_server=dns.address, auth_skip="spf")
    c = session(p, "127.0.0.156")
    assert c.cmd("MAIL FROM:<alice@customer.example>").code == 550, "not authenticated: checked"
    auth = base64.b64encode(b"\0" + AUTH_USER.encode() + b"\0" + AUTH_PASS.encode()).decode()
    assert c.cmd(f"AUTH PLAIN {auth}").code == 235
    assert send_message(c, harmless_message(), mail_from="alice@customer.example").code == 250
    assert len(p.wait_event("spf")) == 1, "the authenticated MAIL was not checked"
