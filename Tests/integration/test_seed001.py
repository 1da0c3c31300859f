"""Seed 001 (the MX proxy with Postfix instances): its helo_access, sender_access and recipient_access files,
copied verbatim (tabs, trailing blanks and all), and its restriction lists written one option per line with
the same names, behave as Postfix's: a forged HELO or sender is refused at RCPT with the map's text, an
unknown sender domain is deferred, a good transaction is relayed. Its reject_unauth_destination and
``$config_directory`` are named by check-config as what SMTPGate does not do.
"""

import subprocess

from conftest import SMTPGATE_BIN, Client
from dnsserver import dnsmasq  # noqa: F401  (fixture)
from scanners import harmless_message, send_message

HELO_ACCESS = (
    "MY-PUBLIC-IP\t\t\tREJECT Forged Source. If I needed a mirror I'd visit the bathroom\n"
    "example.com\t\t\t\tREJECT Forged Source. If I needed a mirror I'd visit the bathroom\n"
    "example.org \t\t\tREJECT Forged Source. If I needed a mirror I'd visit the bathroom \n"
    "subdomain.example.org  \tREJECT Forged Source. If I needed a mirror I'd visit the bathroom \n"
)
SENDER_ACCESS = (
    "example.com\t\t\t\tREJECT forged account \n"
    "example.org\t\t\t\tREJECT forged account\n"
    "subdomain.example.com\tREJECT forged account\n"
)
RECIPIENT_ACCESS = (
    "10.20.30.40\t\t\t\tREJECT forged account \n"
    "127.0.0.1\t\t\t\tREJECT forged account\n"
    "10.11.32.55\t\t\t\tOK\n"
)
FORGED = "Forged Source. If I needed a mirror I'd visit the bathroom"


def seed_maps(tmp_path):
    for name, text in (("helo_access", HELO_ACCESS), ("sender_access", SENDER_ACCESS),
                       ("recipient_access", RECIPIENT_ACCESS)):
        (tmp_path / name).write_text(text)
    return tmp_path


def seed_lists(d):
    """The seed's smtpd_helo/sender/recipient_restrictions, less reject_unauth_destination (out of scope)."""
    return dict(
        helo_restrictions=f"reject_invalid_helo_hostname, reject_non_fqdn_helo_hostname, check_helo_access hash:{d}/helo_access, permit",
        sender_restrictions=f"reject_non_fqdn_sender, check_sender_access hash:{d}/sender_access, reject_unknown_sender_domain, permit",
        recipient_restrictions=(f"reject_unauth_pipelining, reject_non_fqdn_recipient, reject_unknown_recipient_domain, "
                                f"permit_mynetworks, permit_sasl_authenticated, check_sender_access hash:{d}/sender_access, "
                                f"check_recipient_access hash:{d}/recipient_access, permit"),
        mynetworks="10.0.0.0/8",
    )


def rcpt_reply(p, source, helo, sender, rcpt="bob@inbound.example"):
    c = Client(p.port, source=source)
    assert c.greeting().code == 220
    assert c.cmd(f"EHLO {helo}").code == 250
    assert c.cmd(f"MAIL FROM:<{sender}>").code == 250
    r = c.cmd(f"RCPT TO:<{rcpt}>")
    c.cmd("QUIT")
    c.close()
    return r.text


def test_seed_001_maps_and_lists_behave_as_in_postfix(proxy, mta, dnsmasq, tmp_path):
    d = seed_maps(tmp_path)
    dns = dnsmasq([("customer.example", "192.0.2.20"), ("inbound.example", "192.0.2.25")])
    p = proxy(mta.port, dns_server=dns.address, **seed_lists(d))
    # aiosmtpd offers no ENHANCEDSTATUSCODES: the codes below carry none.
    assert rcpt_reply(p, "127.0.0.121", "example.com", "a@customer.example") == f"554 <example.com>: Helo command rejected: {FORGED}"
    assert rcpt_reply(p, "127.0.0.121", "mx.subdomain.example.org", "a@customer.example") == \
        f"554 <mx.subdomain.example.org>: Helo command rejected: {FORGED}", "a parent domain matches (parent_domain_matches_subdomains)"
    assert rcpt_reply(p, "127.0.0.121", "pc1", "a@customer.example") == \
        "504 <pc1>: Helo command rejected: need fully-qualified hostname"
    assert rcpt_reply(p, "127.0.0.122", "mail.customer.example", "ceo@example.com") == \
        "554 <ceo@example.com>: Sender address rejected: forged account"
    assert rcpt_reply(p, "127.0.0.122", "mail.customer.example", "x@mail.subdomain.example.com") == \
        "554 <x@mail.subdomain.example.com>: Sender address rejected: forged account"
    assert rcpt_reply(p, "127.0.0.123", "mail.customer.example", "a@nowhere.example") == \
        "450 <a@nowhere.example>: Sender address rejected: Domain not found"
    assert rcpt_reply(p, "127.0.0.123", "mail.customer.example", "a@customer.example", rcpt="x@nowhere.example") == \
        "450 <x@nowhere.example>: Recipient address rejected: Domain not found"
    c = Client(p.port, source="127.0.0.124")
    assert c.greeting().code == 220 and c.cmd("EHLO mail.customer.example").code == 250
    assert send_message(c, harmless_message(), mail_from="a@customer.example", rcpts=("bob@inbound.example",)).code == 250
    (m,) = mta.wait_messages(1)
    assert m.rcpt_tos == ["bob@inbound.example"]
    rules = sorted({e.get("rule") for e in p.wait_event("reject", count=7)})
    assert f"helo_restrictions check_helo_access hash:{d}/helo_access" in rules, rules
    assert f"sender_restrictions check_sender_access hash:{d}/sender_access" in rules, rules


def check_config(tmp_path, lines):
    conf = tmp_path / "seed.conf"
    conf.write_text("mode fixed\nfixed_server 127.0.0.1\n" + "".join(l + "\n" for l in lines))
    return subprocess.run([SMTPGATE_BIN, "check-config", str(conf)], capture_output=True, text=True, timeout=30), conf


def test_check_config_names_what_the_seed_uses_that_smtpgate_does_not_do(tmp_path):
    d = seed_maps(tmp_path)
    r, conf = check_config(tmp_path, ["recipient_restrictions reject_unauth_pipelining, permit_mynetworks, "
                                      "reject_unauth_destination, permit"])
    assert r.returncode != 0 and f"{conf}:3:" in r.stderr and "reject_unauth_destination is not supported" in r.stderr, r.stderr
    r, conf = check_config(tmp_path, ["helo_restrictions check_helo_access hash:$config_directory/helo_access"])
    assert r.returncode != 0 and "$name expansion is not done" in r.stderr, r.stderr
    r, conf = check_config(tmp_path, ["smtpd_recipient_restrictions = permit"])
    assert r.returncode != 0, r.stderr
    ok = [f"{k} {v}" for k, v in seed_lists(d).items()]
    r, conf = check_config(tmp_path, ok)
    assert r.returncode == 0, r.stderr
    assert f"check_helo_access hash:{d}/helo_access" in r.stdout


def test_a_broken_map_fails_the_start_naming_its_line(tmp_path):
    (tmp_path / "bad_access").write_text("example.com REJECT ok\nexample.net FILTER smtp:[192.0.2.1]\n")
    r, _ = check_config(tmp_path, [f"sender_restrictions check_sender_access texthash:{tmp_path}/bad_access"])
    assert r.returncode != 0 and f"{tmp_path}/bad_access:2:" in r.stderr, r.stderr
