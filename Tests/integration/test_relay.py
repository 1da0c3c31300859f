"""Messages relayed through smtpgate arrive at a real MTA (aiosmtpd) byte for byte.

Clients are Python's smtplib and swaks.  The MTA keeps both the dot-unstuffed
DATA content and every raw byte the proxy sent it, so both the content and
the exact wire form (dot-stuffing included) are compared.
"""

import email
import hashlib
import os
import random
import smtplib
import subprocess

import pytest

from conftest import AUTH_PASS, AUTH_USER, HOST, Client

SENDER = "sender@example.test"
RCPT = "rcpt@example.test"


def smtplib_send(port, body, mail_options=(), rcpts=(RCPT,), timeout=30):
    with smtplib.SMTP(HOST, port, timeout=timeout) as s:
        code, _ = s.ehlo("client.example.test")
        assert code == 250
        refused = s.sendmail(SENDER, list(rcpts), body, mail_options=list(mail_options))
    return refused


def expected_wire(body):
    """What smtplib puts on the wire after DATA (dot-stuffed, terminated)."""
    q = smtplib._quote_periods(body)
    if not q.endswith(b"\r\n"):
        q += b"\r\n"
    return q + b".\r\n"


def check_stored(mta, body, mail_options=()):
    (m,) = mta.wait_messages(1, timeout=20)
    assert m.mail_from == SENDER
    assert m.rcpt_tos == [RCPT]
    for opt in mail_options:
        assert opt in m.mail_options
    assert len(m.content) == len(body)
    assert hashlib.sha256(m.content).hexdigest() == hashlib.sha256(body).hexdigest(), \
        "stored content differs from what the client sent"
    # the proxy must hand the MTA exactly the dot-stuffed stream the client wrote
    assert expected_wire(body) in bytes(m.conn.raw)
    return m


def test_dot_stuffing_preserved(mta, proxy):
    p = proxy(mta.port)
    body = (b".first line starts with a dot\r\n"
            b"Subject: dots\r\n\r\n"
            b".\r\n"                      # a line that is just '.' (sent as '..')
            b"..\r\n"                     # sent as '...'
            b". \r\n"
            b"text\r\n.\r\nafter a lone dot\r\n"
            b".QUIT\r\n"
            b"\r\n.\r\n\r\n"
            b"last line is a dot:\r\n.\r\n")
    assert smtplib_send(p.port, body) == {}
    check_stored(mta, body)


def test_8bit_body(mta, proxy):
    p = proxy(mta.port)
    body = b"Subject: 8bit\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" + \
        bytes(range(0x80, 0x100)) + b"\r\n" + "Grüße, Zoë, 日本語\r\n".encode("utf-8")
    assert smtplib_send(p.port, body, mail_options=["BODY=8BITMIME"]) == {}
    check_stored(mta, body, mail_options=["BODY=8BITMIME"])


def test_70k_single_line(mta, proxy):
    p = proxy(mta.port)
    line = bytes((0x41 + i % 26) for i in range(70 * 1024))
    body = b"Subject: long\r\n\r\n" + line + b"\r\n.trailing dot line\r\n"
    assert smtplib_send(p.port, body) == {}
    check_stored(mta, body)


def test_nul_bytes_in_body(mta, proxy):
    p = proxy(mta.port)
    body = b"Subject: nul\r\n\r\n\x00\x00start\r\nmid\x00dle\r\n.\x00dot-nul\r\n\x00\r\n"
    assert smtplib_send(p.port, body) == {}
    check_stored(mta, body)


def test_10mb_body(mta, proxy):
    p = proxy(mta.port, timeout_idle=30)
    rnd = random.Random(1234)
    alphabet = bytes(range(0x20, 0x7f))
    lines = []
    size = 0
    target = 10 * 1024 * 1024
    while size < target:
        n = rnd.randrange(0, 998)
        ln = bytes(rnd.choice(alphabet) for _ in range(16)) * (n // 16) if n >= 16 else b"x" * n
        if rnd.random() < 0.02:
            ln = b"." + ln
        lines.append(ln)
        size += len(ln) + 2
    body = b"Subject: big\r\n\r\n" + b"\r\n".join(lines) + b"\r\n"
    assert len(body) >= target
    assert smtplib_send(p.port, body, timeout=60) == {}
    check_stored(mta, body)


def swaks(port, *extra, body="hello from swaks"):
    cmd = ["swaks", "--server", f"{HOST}:{port}", "--to", RCPT, "--from", SENDER,
           "--helo", "swaks.example.test", "--timeout", "10", "--body", body] + list(extra)
    r = subprocess.run(cmd, capture_output=True, timeout=30)
    out = r.stdout.decode("utf-8", "replace") + r.stderr.decode("utf-8", "replace")
    return r.returncode, out


def test_swaks_plain(mta, proxy):
    p = proxy(mta.port)
    rc, out = swaks(p.port, body="plain swaks body")
    assert rc == 0, out
    (m,) = mta.wait_messages(1)
    assert m.mail_from == SENDER and m.rcpt_tos == [RCPT]
    assert b"plain swaks body" in m.content
    assert m.helo == "swaks.example.test"


def test_swaks_pipeline(mta, proxy):
    p = proxy(mta.port)
    rc, out = swaks(p.port, "--pipeline", body="pipelined swaks body")
    assert rc == 0, out
    assert "PIPELINING" in out               # advertised to the client through the proxy
    (m,) = mta.wait_messages(1)
    assert b"pipelined swaks body" in m.content


@pytest.mark.parametrize("mech", ["PLAIN", "LOGIN"])
def test_swaks_auth(mta, proxy, mech):
    p = proxy(mta.port)
    rc, out = swaks(p.port, "--auth", mech, "--auth-user", AUTH_USER, "--auth-password", AUTH_PASS,
                    body=f"auth {mech} body")
    assert rc == 0, out
    assert "235" in out
    (m,) = mta.wait_messages(1)
    assert m.auth is not None and bytes(m.auth.login) == AUTH_USER.encode()
    assert f"auth {mech} body".encode() in m.content


def test_swaks_auth_wrong_password_not_delivered(mta, proxy):
    p = proxy(mta.port)
    rc, out = swaks(p.port, "--auth", "PLAIN", "--auth-user", AUTH_USER, "--auth-password", "wrong")
    assert rc != 0
    assert "535" in out
    assert mta.messages == []


def test_swaks_attachment(mta, proxy, tmp_path):
    p = proxy(mta.port)
    att = tmp_path / "payload.bin"
    data = os.urandom(50_000) + b"\r\n.\r\n" + b"\x00" * 100
    att.write_bytes(data)
    rc, out = swaks(p.port, "--attach", str(att), body="see attachment")
    assert rc == 0, out
    (m,) = mta.wait_messages(1)
    msg = email.message_from_bytes(m.content)
    assert msg.is_multipart()
    payloads = [part.get_payload(decode=True) for part in msg.walk()
                if part.get_filename() == "payload.bin"]
    assert payloads == [data]


def test_ehlo_reply_relayed_verbatim(mta, proxy):
    """aiosmtpd's EHLO (PIPELINING, 8BITMIME, SMTPUTF8, SIZE, AUTH) reaches the client unchanged."""
    with Client(mta.port) as d:
        d.greeting()
        direct = d.cmd("EHLO same.test")
    p = proxy(mta.port)
    with p.connect() as c:
        assert c.greeting().code == 220
        via = c.cmd("EHLO same.test")
    assert via.raw == direct.raw
    for kw in ("250-PIPELINING", "250-8BITMIME", "250-SMTPUTF8", "250-SIZE 67108864", "250-AUTH LOGIN PLAIN"):
        assert kw in via.lines


def test_smtputf8_addresses(mta, proxy):
    p = proxy(mta.port)
    sender = "jörg@exämple.test"
    rcpt = "zoë@exämple.test"
    body = "Subject: utf8\r\n\r\nhéllo\r\n".encode("utf-8")
    with smtplib.SMTP(HOST, p.port, timeout=10) as s:
        s.ehlo("utf8.test")
        assert s.has_extn("smtputf8")
        assert s.sendmail(sender, [rcpt], body, mail_options=["SMTPUTF8", "BODY=8BITMIME"]) == {}
    (m,) = mta.wait_messages(1)
    assert m.mail_from == sender and m.rcpt_tos == [rcpt]
    assert m.content == body
    (t,) = p.wait_event("transaction")
    assert t.get("from") == f"<{sender}>"
    assert t.raw("from") == f"<{sender}>", "UTF-8 is logged as it is, not escaped"


def test_mta_rejection_is_relayed(mta, proxy):
    """No acknowledgement for a message the MTA refused."""
    p = proxy(mta.port)
    with pytest.raises(smtplib.SMTPDataError) as e:
        smtplib_send(p.port, b"Subject: no\r\n\r\nREJECT-THIS-MESSAGE\r\n")
    assert e.value.smtp_code == 554
    assert e.value.smtp_error == b"5.7.1 message content rejected"
    assert mta.messages == []
    (t,) = p.wait_event("transaction")
    assert t.get("result") == "554"
