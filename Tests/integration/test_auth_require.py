"""``auth_require`` with the real daemon: against aiosmtpd (which offers AUTH PLAIN and LOGIN) and a scripted
MTA that offers none, an unauthenticated MAIL gets 530 5.7.0 from the proxy and never reaches the MTA; after a
successful AUTH the transaction is relayed; a failed AUTH authenticates nobody.
"""

import base64

from conftest import AUTH_PASS, AUTH_USER, DEFAULT_EHLO, PROXY_NAME, Client
from scanners import harmless_message, send_message

REQUIRED = f"530 5.7.0 {PROXY_NAME}: Authentication required"
# aiosmtpd offers no ENHANCEDSTATUSCODES, so the proxy's replies carry none either.
REQUIRED_PLAIN = f"530 {PROXY_NAME}: Authentication required"


def plain(user, password):
    return base64.b64encode(b"\0" + user.encode() + b"\0" + password.encode()).decode()


def ehlo(p, source):
    c = Client(p.port, source=source)
    assert c.greeting().code == 220
    r = c.cmd("EHLO client.test")
    assert r.code == 250, r
    return c, r


def test_ifsupported_refuses_mail_until_auth_succeeds(proxy, mta):
    p = proxy(mta.port, auth_require="ifsupported")
    c, r = ehlo(p, "127.0.0.81")
    assert any(l[4:].upper().startswith("AUTH") for l in r.lines), r
    assert c.cmd("MAIL FROM:<anon@x.test>").text == REQUIRED_PLAIN
    assert c.cmd(f"AUTH PLAIN {plain(AUTH_USER, 'wrong')}").code == 535
    assert c.cmd("MAIL FROM:<anon@x.test>").text == REQUIRED_PLAIN, "a refused AUTH authenticates nobody"
    assert c.cmd(f"AUTH PLAIN {plain(AUTH_USER, AUTH_PASS)}").code == 235
    assert send_message(c, harmless_message(), mail_from="authed@x.test").code == 250
    assert c.cmd("QUIT").code == 221
    c.wait_closed()
    (m,) = mta.wait_messages(1)
    assert m.mail_from == "authed@x.test"
    raw = bytes(m.conn.raw)
    assert b"anon@x.test" not in raw, "the refused MAILs never reached the MTA"
    rejects = p.wait_event("reject", count=2, session=p.session_id(c.local))
    assert [(e.get("command"), e.get("from"), e.get("code"), e.get("reason")) for e in rejects] == [
        ("mail", "<anon@x.test>", "530", "auth_required")] * 2, rejects


def test_ifsupported_lets_mail_through_where_the_mta_offers_no_auth(proxy, scripted_mta):
    m = scripted_mta(ehlo=[l for l in DEFAULT_EHLO if not l.startswith("AUTH")])
    p = proxy(m.port, auth_require="ifsupported")
    c, _ = ehlo(p, "127.0.0.82")
    assert c.cmd("MAIL FROM:<a@x.test>").code == 250
    assert c.cmd("QUIT").code == 221
    assert "MAIL FROM:<a@x.test>" in m.conns[0].lines


def test_mandatory_refuses_mail_even_where_the_mta_offers_no_auth(proxy, scripted_mta):
    m = scripted_mta(ehlo=[l for l in DEFAULT_EHLO if not l.startswith("AUTH")])
    p = proxy(m.port, auth_require="mandatory")
    c, _ = ehlo(p, "127.0.0.83")
    assert c.cmd("MAIL FROM:<a@x.test>").text == REQUIRED
    assert c.cmd("RCPT TO:<b@x.test>").code == 503
    assert c.cmd("QUIT").code == 221
    c.wait_closed()
    assert not any(l.startswith(("MAIL", "RCPT")) for l in m.conns[0].lines), m.conns[0].lines


def test_no_is_the_default_and_requires_nothing(proxy, mta):
    p = proxy(mta.port)
    c, _ = ehlo(p, "127.0.0.84")
    assert send_message(c, harmless_message()).code == 250
    assert len(mta.wait_messages(1)) == 1


def test_ifsupported_counts_a_helo_client_as_offered_auth(proxy, scripted_mta):
    # After HELO nothing says the MTA offers no AUTH: the client is refused as under mandatory.
    m = scripted_mta(ehlo=[l for l in DEFAULT_EHLO if not l.startswith("AUTH")])
    p = proxy(m.port, auth_require="ifsupported")
    c = Client(p.port, source="127.0.0.85")
    assert c.greeting().code == 220
    assert c.cmd("HELO old.test").code == 250
    assert c.cmd("MAIL FROM:<a@x.test>").text == f"530 {PROXY_NAME}: Authentication required"
    assert c.cmd("QUIT").code == 221
    assert not any(l.startswith("MAIL") for l in m.conns[0].lines)
