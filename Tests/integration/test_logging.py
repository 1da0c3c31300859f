"""The per-session log: one ``open`` and one ``close`` line per session, one
``transaction`` line per message (HELO, sender, every recipient with the MTA's
reply code, size, result), escaping of client-controlled text, and JSON lines.
"""

import json
import re

from conftest import HOST, LOG_LINE_RE, unescape

BODY1 = b"Subject: one\r\n\r\nfirst message\r\n"
BODY2 = b"Subject: two\r\n\r\nsecond message, a bit longer\r\n"


def two_message_session(p, helo=b"logtest.example"):
    c = p.connect()
    assert c.greeting().code == 220
    assert c.cmd(b"EHLO " + helo).code == 250
    assert c.cmd("MAIL FROM:<a@x.test>").code == 250
    assert c.cmd("RCPT TO:<b@x.test>").code == 250
    assert c.cmd("RCPT TO:<reject-c@x.test>").code == 550
    assert c.cmd("DATA").code == 354
    c.send(BODY1 + b".\r\n")
    assert c.read_reply().code == 250
    assert c.cmd("MAIL FROM:<d@x.test>").code == 250
    assert c.cmd("RCPT TO:<e@x.test>").code == 250
    assert c.cmd("DATA").code == 354
    c.send(BODY2 + b".\r\n")
    assert c.read_reply().code == 250
    assert c.cmd("QUIT").code == 221
    c.wait_closed()
    c.close()
    return c


def test_open_transaction_close_lines(mta, proxy):
    p = proxy(mta.port)
    c = two_message_session(p)
    sid = p.session_id(c.local)
    close = p.wait_close(sid)
    recs = p.session_records(sid)
    assert [r.event for r in recs if r.event == "open"] == ["open"]
    assert [r.event for r in recs if r.event == "close"] == ["close"]
    trans = [r for r in recs if r.event == "transaction"]
    assert len(trans) == 2, trans

    (op,) = [r for r in recs if r.event == "open"]
    assert op.get("client") == c.local
    assert op.get("local") == f"{HOST}:{p.port}"
    assert op.get("dest") == f"{HOST}:{mta.port}"
    assert op.get("listener")

    t1, t2 = sorted(trans, key=lambda r: int(r.get("trans")))
    assert t1.get("trans") == "1" and t2.get("trans") == "2"
    for t in (t1, t2):
        assert t.get("client") == c.local
        assert t.get("dest") == f"{HOST}:{mta.port}"
        assert t.get("helo") == "logtest.example"
        assert t.get("result") == "250"
    assert t1.get("from") == "<a@x.test>"
    assert t1.getall("rcpt") == ["<b@x.test>:250", "<reject-c@x.test>:550"]
    assert t2.get("from") == "<d@x.test>"
    assert t2.getall("rcpt") == ["<e@x.test>:250"]
    # size is the message size (with or without the terminating ".\r\n")
    assert int(t1.get("size")) in (len(BODY1), len(BODY1) + 3)
    assert int(t2.get("size")) in (len(BODY2), len(BODY2) + 3)

    assert close.get("client") == c.local
    assert close.get("dest") == f"{HOST}:{mta.port}"
    assert close.get("helo") == "logtest.example"
    assert close.get("trans") == "2"
    assert int(close.get("bytes_in")) == c.sent
    assert int(close.get("bytes_out")) == c.received
    assert float(close.get("duration")) >= 0
    assert close.get("reason") == "quit"
    assert close.get("closed_by") in ("client", "server")
    assert close.level == "info"

    # a second session gets its own, different session ID
    c2 = p.connect()
    assert c2.greeting().code == 220
    c2.cmd("QUIT")
    c2.close()
    sid2 = p.session_id(c2.local)
    assert sid2 != sid
    p.wait_close(sid2)
    assert len(p.events("open")) == 2
    assert len(p.events("close")) == 2


HOSTILE_HELO = b'ev%il\\"q\x00\xff\xe9\rsmtpgate[1]: info open session=forged x\x01'


def test_hostile_helo_is_escaped(mta, proxy):
    p = proxy(mta.port)
    c = p.connect()
    assert c.greeting().code == 220
    assert c.cmd(b"HELO " + HOSTILE_HELO).code == 250
    assert c.cmd("MAIL FROM:<pct%25@x.test>").code == 250
    assert c.cmd("RCPT TO:<b@x.test>").code == 250
    assert c.cmd("DATA").code == 354
    c.send(b"hi\r\n.\r\n")
    assert c.read_reply().code == 250
    assert c.cmd("QUIT").code == 221
    c.close()
    sid = p.session_id(c.local)
    close = p.wait_close(sid)
    (t,) = p.wait_event("transaction", session=sid)

    raw = p.log_path.read_bytes()
    for line in raw.split(b"\n")[:-1]:
        assert all(b >= 0x20 and b != 0x7f for b in line), f"unescaped control byte in log line {line!r}"
        assert LOG_LINE_RE.match(line.decode("utf-8")), line
    assert raw.endswith(b"\n")
    recs = p.records()
    assert len(p.events("open")) == 1
    assert not [r for r in recs if r.get("session") == "forged"]

    for r in (t, close):
        v = r.raw("helo")
        assert unescape(v) == HOSTILE_HELO
        low = v.lower()
        for esc in (r"\x5c", r"\x00", r"\xff", r"\x0d", r"\x01"):
            assert esc in low, (esc, v)
        # spaces, quotes and % stay readable: the value is quoted, its quote written \"
        assert "ev%il" in v and " session=forged x" in v
        assert r"helo=" + '"' + r'ev%il\x5c\"q' in r.line, r.line
    assert t.raw("from") == "<pct%25@x.test>"


def test_log_options_off(mta, proxy):
    p = proxy(mta.port, log_helo="no", log_mail_from="no", log_rcpt_to="no")
    c = two_message_session(p, helo=b"secret-helo.example")
    sid = p.session_id(c.local)
    p.wait_close(sid)
    trans = p.wait_event("transaction", session=sid, count=2)
    for t in trans:
        assert t.get("helo") is None and t.get("from") is None and t.getall("rcpt") == []
        assert t.get("result") == "250"
    assert "secret-helo" not in p.log_text()
    assert "a@x.test" not in p.log_text()
    assert "reject-c@x.test" not in p.log_text()


def test_json_log(mta, proxy):
    p = proxy(mta.port, log_format="json")
    c = p.connect()
    assert c.greeting().code == 220
    assert c.cmd(b"EHLO jsonclient.test").code == 250
    assert c.cmd("MAIL FROM:<a@x.test>").code == 250
    assert c.cmd("RCPT TO:<b@x.test>").code == 250
    assert c.cmd("RCPT TO:<reject-c@x.test>").code == 550
    assert c.cmd("DATA").code == 354
    c.send(BODY1 + b".\r\n")
    assert c.read_reply().code == 250
    assert c.cmd("QUIT").code == 221
    c.wait_closed()
    c.close()
    # a second session with a hostile HELO must still give one valid JSON object per line
    c2 = p.connect()
    assert c2.greeting().code == 220
    assert c2.cmd(b"HELO " + HOSTILE_HELO).code == 250
    assert c2.cmd("QUIT").code == 221
    c2.close()

    op = p.wait_event("open", client=c.local)[0].json
    sid = op["session"]
    close = p.wait_event("close", session=sid)[0].json
    (t,) = [r.json for r in p.wait_event("transaction", session=sid)]
    lines = p.log_lines()
    objs = [json.loads(l) for l in lines]          # every line is one JSON object
    assert all(isinstance(o, dict) for o in objs)
    for o in (op, t, close):
        for k in ("ts", "level", "event", "session"):
            assert k in o, (k, o)
    assert op["client"] == c.local and op["dest"] == f"{HOST}:{mta.port}"
    assert op["local"] == f"{HOST}:{p.port}"
    assert t["helo"] == "jsonclient.test"
    assert t["from"] == "<a@x.test>"
    assert t["rcpt"] == [{"to": "<b@x.test>", "code": 250}, {"to": "<reject-c@x.test>", "code": 550}]
    assert str(t["trans"]) == "1"
    assert int(t["size"]) in (len(BODY1), len(BODY1) + 3)
    assert str(t["result"]) == "250"
    assert int(close["bytes_in"]) == c.sent
    assert int(close["bytes_out"]) == c.received
    assert close["reason"] == "quit"
    assert str(close["trans"]) == "1"
    # second session: valid JSON, nothing forged
    p.wait_event("close", count=2)
    objs = [json.loads(l) for l in p.log_lines()]
    assert len([o for o in objs if o.get("event") == "open"]) == 2
    assert not [o for o in objs if str(o.get("session")) == "forged"]
    assert not re.search(r"[\x00-\x1f]", p.log_text().replace("\n", ""))


def test_bare_lf_in_helo_cannot_forge_log_line(mta, proxy):
    p = proxy(mta.port)
    c = p.connect()
    assert c.greeting().code == 220
    c.send(b"HELO evil\n2026-11-21T10:00:00.000Z smtpgate[1]: info open session=forged\r\n")
    assert c.read_reply().code in (250, 500, 501, 502)
    c.send(b"QUIT\r\n")
    c.wait_closed()
    c.close()
    sid = p.session_id(c.local)
    p.wait_close(sid)
    raw = p.log_path.read_bytes()
    for line in raw.split(b"\n")[:-1]:
        assert all(b >= 0x20 and b != 0x7f for b in line), f"unescaped control byte in log line {line!r}"
        assert LOG_LINE_RE.match(line.decode("utf-8")), line
    recs = p.records()
    assert len([r for r in recs if r.event == "open"]) == 1
    assert not [r for r in recs if r.get("session") == "forged"]
