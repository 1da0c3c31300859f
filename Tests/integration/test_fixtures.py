"""Self-tests of the peers and parsers the proxy tests rely on (no proxy involved).

If one of these fails, the proxy tests cannot be trusted: they check that the
aiosmtpd MTA stores exact bytes, that swaks and smtplib work against it, that
the scripted MTA misbehaves as told, and that the log parser honours the
``\\xHH`` escape rule.
"""

import base64
import smtplib
import subprocess

import pytest

from conftest import (AUTH_PASS, AUTH_USER, HOST, Client, DEFAULT_EHLO, ehlo_keywords,
                      parse_json_line, parse_text_line, unescape, wait_until, port_listening)


def test_aiosmtpd_stores_exact_bytes(mta):
    body = (b"Subject: t\r\n\r\n.leading dot\r\n.\r\n..two\r\n"
            b"nul\x00byte \xff\xfe 8bit\r\n" + b"L" * 70000 + b"\r\nend\r\n")
    with smtplib.SMTP(HOST, mta.port, timeout=10) as s:
        assert "pipelining" in s.ehlo()[1].decode().lower()
        s.sendmail("a@x.test", ["b@y.test"], body, mail_options=["BODY=8BITMIME"])
    (m,) = mta.wait_messages(1)
    assert m.content == body
    assert "BODY=8BITMIME" in m.mail_options
    wire = smtplib._quote_periods(body) + b".\r\n"
    assert wire in m.conn.raw


def test_aiosmtpd_rejects_marked_rcpt_and_auth(mta):
    with Client(mta.port) as c:
        assert c.greeting().code == 220
        assert c.cmd("EHLO me").code == 250
        assert c.cmd("MAIL FROM:<a@x>").code == 250
        assert c.cmd("RCPT TO:<reject-me@x>").code == 550
        assert c.cmd("RSET").code == 250
        assert c.cmd("AUTH LOGIN").code == 334
        assert c.cmd("QUIT").code == 334          # SASL data, not a command
        assert c.cmd("DATA").code == 235
    with Client(mta.port) as c:
        c.greeting()
        c.cmd("EHLO me")
        ir = base64.b64encode(f"\0{AUTH_USER}\0{AUTH_PASS}".encode()).decode()
        assert c.cmd("AUTH PLAIN " + ir).code == 235
        assert c.cmd("AUTH PLAIN").code == 503     # already authenticated


@pytest.mark.parametrize("extra", [[], ["--pipeline"],
                                   ["--auth", "PLAIN", "--auth-user", AUTH_USER, "--auth-password", AUTH_PASS]])
def test_swaks_against_aiosmtpd(mta, extra):
    r = subprocess.run(["swaks", "--server", f"{HOST}:{mta.port}", "--to", "rcpt@example.test",
                        "--from", "from@example.test", "--body", "hello", "--timeout", "10"] + extra,
                       capture_output=True, timeout=30)
    assert r.returncode == 0, r.stdout.decode() + r.stderr.decode()
    (m,) = mta.wait_messages(1)
    assert b"hello" in m.content


def test_scripted_mta_extensions_and_starttls_echo(scripted_mta):
    s = scripted_mta()
    with Client(s.port) as c:
        assert c.greeting().code == 220
        r = c.cmd("EHLO me")
        assert ehlo_keywords(r) == DEFAULT_EHLO[1:]
        assert c.cmd("AUTH LOGIN").code == 334
        assert c.cmd("QUIT").code == 334
        assert c.cmd("DATA").code == 235
        assert c.cmd("STARTTLS").code == 220
        blob = bytes(range(256)) * 4 + b"\r\n.\r\nQUIT\r\n"
        c.send(blob)
        assert c.read_exact(len(blob)) == blob
    conn = s.conns[0]
    wait_until(lambda: bytes(conn.after_starttls) == blob, what="recorded blob")
    assert conn.lines[1:5] == ["AUTH LOGIN", "QUIT", "DATA", "STARTTLS"]


def test_scripted_mta_faults(scripted_mta):
    silent = scripted_mta(greet=False)
    with Client(silent.port) as c:
        with pytest.raises(OSError):
            c.read_reply(timeout=0.5)
    dies = scripted_mta(close_mid_data=10)
    with Client(dies.port) as c:
        c.greeting()
        c.cmd("HELO x")
        c.cmd("MAIL FROM:<a@x>")
        c.cmd("RCPT TO:<b@x>")
        assert c.cmd("DATA").code == 354
        c.send(b"0123456789abcdef\r\n")
        c.wait_closed()
    ok = scripted_mta()
    with Client(ok.port) as c:
        c.greeting()
        c.send(b"HELO x\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@x>\r\nRCPT TO:<reject@x>\r\nDATA\r\n")
        codes = [r.code for r in c.read_replies(5)]
        assert codes == [250, 250, 250, 550, 354]
        c.send(b"..dot\r\n.\r\nQUIT\r\n")
        assert [r.code for r in c.read_replies(2)] == [250, 221]
    assert ok.conns[0].messages == [b"..dot\r\n"]


def test_log_parser_escapes():
    line = (r'2026-11-21T10:00:00.123Z smtpgate[42]: info transaction session=7 helo="a b%\x5c\x00 \"q\" x=y"'
            r' rcpt=<a@b>:250 rcpt="<c d@e>:550" size=3 empty="" é=ü')
    r = parse_text_line(line)
    assert (r.level, r.event, r.pid) == ("info", "transaction", 42)
    assert r.get("helo") == 'a b%\\\x00 "q" x=y'
    assert r.raw("helo") == r'a b%\x5c\x00 "q" x=y'
    assert r.getall("rcpt") == ["<a@b>:250", "<c d@e>:550"]
    assert r.get("size") == "3" and r.get("empty") == "" and r.get("é") == "ü" and r.get("x") is None
    assert unescape(r"\xff\x0d\x0a") == b"\xff\r\n"
    assert parse_text_line(r"2026-11-21T10:00:00Z smtpgate[1]: info x v=a\xffb").get("v").encode("utf-8", "surrogateescape") == b"a\xffb"
    r = parse_text_line('2026-11-21T10:00:00Z smtpgate[1]: error reload failed error="/f:3: bad"')
    assert r.words == ["failed"] and r.get("error") == "/f:3: bad"
    for bad in ("info open a=b\rforged", 'info open a="unclosed', 'info open a="x"y'):
        with pytest.raises(ValueError):
            parse_text_line("2026-11-21T10:00:00Z smtpgate[1]: " + bad)
    j = parse_json_line('{"ts":"x","level":"info","event":"open","session":"1"}')
    assert j.event == "open" and j.get("session") == "1"


def test_port_listening_probe(mta, closed_port):
    assert port_listening(mta.port)
    assert not port_listening(closed_port)
