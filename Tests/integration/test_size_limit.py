"""size_limit against a real MTA: an oversized body is never completed upstream (the MTA stores nothing),
the client gets 552 5.3.4 at its end of DATA; a declared SIZE over the limit is refused at MAIL."""
import smtplib

import pytest

from conftest import PROXY_NAME, start

PN = PROXY_NAME
LIMIT = 10_000


def test_oversized_body_gets_552_and_the_mta_stores_nothing(proxy, mta):
    p = proxy(mta.port, size_limit=LIMIT)
    c = start(p)
    assert c.cmd("MAIL FROM:<a@customer.test>").code == 250
    assert c.cmd("RCPT TO:<b@example.test>").code == 250
    assert c.cmd("DATA").code == 354
    c.send((b"x" * 998 + b"\r\n") * 20 + b".\r\n")
    # aiosmtpd does not offer ENHANCEDSTATUSCODES, so the proxy's reply carries no x.y.z code
    assert c.read_reply().text == f"552 {PN}: message size exceeds fixed limit (size_limit {LIMIT})"
    assert c.cmd("MAIL FROM:<a@customer.test>").code == 451, "the session is taken over"
    assert c.cmd("QUIT").code == 221
    txn = p.wait_event("transaction")[0]
    assert (txn.get("result"), txn.get("why")) == ("aborted", "size_limit")
    assert p.wait_event("close")[0].get("takeover") == "message size exceeds fixed limit"
    assert mta.conns and mta.conns[0].closed.wait(5), "the upstream connection was closed mid-DATA"
    assert mta.messages == []


def test_message_within_the_limit_is_delivered(proxy, mta):
    p = proxy(mta.port, size_limit=LIMIT)
    body = b"Subject: small\r\n\r\n" + b"..dot-led line counts once\r\n" * 10
    with smtplib.SMTP("127.0.0.1", p.port, timeout=10) as s:
        s.sendmail("a@customer.test", ["b@example.test"], body)
    mta.wait_messages(1)
    assert mta.messages[0].content.replace(b"\r\n", b"\n").endswith(b".dot-led line counts once\n")


def test_declared_size_over_the_limit_is_refused_at_mail(proxy, mta):
    p = proxy(mta.port, size_limit=LIMIT)
    with smtplib.SMTP("127.0.0.1", p.port, timeout=10) as s:
        with pytest.raises(smtplib.SMTPSenderRefused) as refused:
            s.sendmail("a@customer.test", ["b@example.test"], b"x" * (LIMIT + 10))
    assert refused.value.smtp_code == 552
    assert f"size_limit {LIMIT}".encode() in refused.value.smtp_error
    assert mta.messages == []
    assert b"MAIL FROM" not in bytes(mta.conns[0].raw)
