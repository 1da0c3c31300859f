"""ESMTP extensions through the proxy: EHLO filtering (CHUNKING, BINARYMIME,
XEXCH50 removed), BDAT refused, STARTTLS pass (blind relay, timeout_direct)
and forbid, AUTH in both advertised forms and SASL continuation lines that
look like commands.
"""

import base64
import os

from conftest import (AUTH_PASS, AUTH_USER, DEFAULT_EHLO, PROXY_NAME, SASL_QUIT_USER,
                      ehlo_keywords, start, wait_until)

REMOVED = {"CHUNKING", "BINARYMIME", "XEXCH50"}


def start(p, helo="EHLO client.test"):
    c = p.connect()
    assert c.greeting().code == 220
    r = c.cmd(helo)
    assert r.code == 250
    return c, r


def test_ehlo_filtered(scripted_mta, proxy):
    s = scripted_mta()
    p = proxy(s.port, forbid_starttls="no")
    c, r = start(p)
    assert ehlo_keywords(r) == [k for k in DEFAULT_EHLO[1:] if k not in REMOVED]
    assert r.lines[0] == "250-" + DEFAULT_EHLO[0]
    assert r.raw.endswith(b"\r\n") and r.raw.count(b"\r\n") == len(r.lines)
    assert c.cmd("QUIT").code == 221


def test_ehlo_filter_when_removed_keyword_is_last(scripted_mta, proxy):
    s = scripted_mta(ehlo=["mta.scripted.test", "PIPELINING", "ENHANCEDSTATUSCODES", "XEXCH50",
                           "BINARYMIME", "CHUNKING"])
    p = proxy(s.port)
    c, r = start(p)
    assert r.lines == ["250-mta.scripted.test", "250-PIPELINING", "250 ENHANCEDSTATUSCODES"]
    assert c.cmd("NOOP").text == "250 2.0.0 Ok"       # still in step with the MTA
    assert c.cmd("QUIT").code == 221


def test_bdat_refused(scripted_mta, proxy):
    s = scripted_mta()
    p = proxy(s.port)
    c, _ = start(p)
    assert c.cmd("BDAT 0 LAST").raw == f"502 5.5.1 {PROXY_NAME}: BDAT not supported\r\n".encode()
    assert c.cmd("bdat 0 last").raw == f"502 5.5.1 {PROXY_NAME}: BDAT not supported\r\n".encode()
    assert c.cmd("NOOP").text == "250 2.0.0 Ok"
    assert c.cmd("QUIT").code == 221
    c.wait_closed()
    assert not [l for l in s.conns[0].lines if l.upper().startswith("BDAT")]


def test_starttls_forbidden(scripted_mta, proxy):
    s = scripted_mta()
    p = proxy(s.port, forbid_starttls="yes")
    c, r = start(p)
    kws = ehlo_keywords(r)
    assert "STARTTLS" not in [k.upper() for k in kws]
    assert "PIPELINING" in kws and "ENHANCEDSTATUSCODES" in kws
    want = f"502 5.5.1 {PROXY_NAME}: STARTTLS not permitted\r\n".encode()
    assert c.cmd("STARTTLS").raw == want
    assert c.cmd("starttls").raw == want
    # the session goes on in clear text
    assert c.cmd("MAIL FROM:<a@x.test>").code == 250
    assert c.cmd("RCPT TO:<b@x.test>").code == 250
    assert c.cmd("DATA").code == 354
    c.send(b"clear\r\n.\r\n")
    assert c.read_reply().code == 250
    assert c.cmd("QUIT").code == 221
    c.wait_closed()
    assert not [l for l in s.conns[0].lines if l.upper().startswith("STARTTLS")]
    assert s.conns[0].messages == [b"clear\r\n"]


def test_starttls_pass_is_blind_relay(scripted_mta, proxy):
    s = scripted_mta()
    p = proxy(s.port, forbid_starttls="no", timeout_direct=10)
    c, r = start(p)
    assert "STARTTLS" in ehlo_keywords(r)
    assert c.cmd("STARTTLS").text == "220 2.0.0 Ready to start TLS"
    # anything goes now; the proxy must neither parse nor alter it, in either direction
    chunks = [
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(range(256)),
        b"QUIT\r\nBDAT 10 LAST\r\nSTARTTLS\r\n\r\n.\r\nDATA\r\n",
        b"500 \r\n250-CHUNKING\r\n",
        os.urandom(65536),
        b"\x00" * 1000 + b"\r\n.\r\n",
    ]
    for chunk in chunks:
        c.send(chunk)
        assert c.read_exact(len(chunk)) == chunk
    blob = b"".join(chunks)
    conn = s.conns[0]
    wait_until(lambda: len(conn.after_starttls) >= len(blob), what="blob at MTA")
    assert bytes(conn.after_starttls) == blob
    sid = p.session_id(c.local)
    p.wait_event("starttls", session=sid)
    c.close()
    close = p.wait_close(sid)
    assert int(close.get("bytes_in")) == c.sent
    assert int(close.get("bytes_out")) == c.received
    assert close.get("closed_by") == "client"


def test_timeout_direct_after_starttls(scripted_mta, proxy):
    s = scripted_mta()
    p = proxy(s.port, forbid_starttls="no", timeout_direct=1, timeout_idle=30, timeout_session=30)
    c, _ = start(p)
    assert c.cmd("STARTTLS").code == 220
    c.send(b"\x16\x03\x01 hello")
    assert c.read_exact(9) == b"\x16\x03\x01 hello"
    # nothing may be injected into the encrypted stream: the proxy just closes
    assert c.wait_closed(timeout=6) == b""
    sid = p.session_id(c.local)
    close = p.wait_close(sid)
    assert close.get("reason") == "direct_timeout"
    wait_until(lambda: s.conns[0].closed.is_set(), what="upstream closed")


def test_auth_forms_pass_through(scripted_mta, proxy):
    s = scripted_mta()
    p = proxy(s.port)
    c, r = start(p)
    kws = ehlo_keywords(r)
    assert "AUTH PLAIN LOGIN" in kws
    assert "AUTH=PLAIN LOGIN" in kws


def test_auth_login_sasl_lines_look_like_commands(scripted_mta, proxy):
    s = scripted_mta()
    p = proxy(s.port, forbid_starttls="yes")
    c, _ = start(p)
    assert c.cmd("AUTH LOGIN").text == "334 VXNlcm5hbWU6"
    # continuation lines are SASL data, whatever they look like
    assert c.cmd("STARTTLS").text == "334 UGFzc3dvcmQ6"
    assert c.cmd("BDAT 0 LAST").text == "235 2.7.0 Authentication successful"
    assert c.cmd("AUTH PLAIN").raw == b"334 \r\n"
    assert c.cmd("QUIT").text == "235 2.7.0 Authentication successful"
    assert c.cmd("NOOP").text == "250 2.0.0 Ok"
    assert c.cmd("QUIT").code == 221
    c.wait_closed()
    assert s.conns[0].lines[1:7] == ["AUTH LOGIN", "STARTTLS", "BDAT 0 LAST", "AUTH PLAIN", "QUIT", "NOOP"]


def test_auth_login_quit_data_credentials_aiosmtpd(mta, proxy):
    p = proxy(mta.port)
    c, r = start(p)
    assert any(k.upper().startswith("AUTH") and "LOGIN" in k.upper() for k in ehlo_keywords(r))
    assert c.cmd("AUTH LOGIN").code == 334
    assert c.cmd("QUIT").code == 334         # base64 user name "QUIT"
    assert c.cmd("DATA").code == 235         # base64 password "DATA"
    assert c.cmd("MAIL FROM:<authed@x.test>").code == 250
    assert c.cmd("RCPT TO:<b@x.test>").code == 250
    assert c.cmd("DATA").code == 354
    c.send(b"authenticated\r\n.\r\n")
    assert c.read_reply().code == 250
    assert c.cmd("QUIT").code == 221
    (m,) = mta.wait_messages(1)
    assert bytes(m.auth.login) == SASL_QUIT_USER
    assert b"AUTH LOGIN\r\nQUIT\r\nDATA\r\nMAIL FROM:<authed@x.test>\r\n" in bytes(m.conn.raw)


def test_auth_plain_empty_initial_response_and_cancel(mta, proxy):
    p = proxy(mta.port)
    c, _ = start(p)
    # cancelled exchange: back to command mode afterwards
    assert c.cmd("AUTH LOGIN").code == 334
    assert c.cmd("*").code == 501
    assert c.cmd("NOOP").code == 250
    # PLAIN with the credentials in a continuation line
    assert c.cmd("AUTH PLAIN").code == 334
    cred = base64.b64encode(f"\0{AUTH_USER}\0{AUTH_PASS}".encode())
    assert c.cmd(cred).code == 235
    assert c.cmd("MAIL FROM:<a@x.test>").code == 250
    assert c.cmd("RCPT TO:<b@x.test>").code == 250
    assert c.cmd("DATA").code == 354
    c.send(b"plain\r\n.\r\n")
    assert c.read_reply().code == 250
    (m,) = mta.wait_messages(1)
    assert bytes(m.auth.login) == AUTH_USER.encode()
