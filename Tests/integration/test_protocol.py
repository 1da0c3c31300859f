"""SMTP dialogue handling written raw on a socket: pipelining, tiny writes, many
commands per write, lower-case verbs, a slow upstream.  Replies must arrive
complete and in order and the message must be stored exactly.
"""

import socket
import time

from conftest import Client


def session_start(p, helo="EHLO client.test"):
    c = p.connect()
    g = c.greeting()
    assert g.code == 220
    r = c.cmd(helo)
    assert r.code == 250
    return c


def test_pipelined_session_raw(mta, proxy):
    p = proxy(mta.port)
    c = session_start(p)
    c.send(b"MAIL FROM:<a@example.test>\r\nRCPT TO:<b@example.test>\r\n"
           b"RCPT TO:<reject-c@example.test>\r\nDATA\r\n")
    replies = c.read_replies(4)
    assert [r.code for r in replies] == [250, 250, 550, 354]
    assert "reject-c@example.test" in replies[2].text       # MTA's own text, relayed
    body = b"Subject: pipelined\r\n\r\nline 1\r\n..stuffed\r\n"
    c.send(body)
    c.send(b".\r\nQUIT\r\n")
    replies = c.read_replies(2)
    assert [r.code for r in replies] == [250, 221]
    assert replies[0].text.startswith("250 OK queued as")
    c.wait_closed()
    (m,) = mta.wait_messages(1)
    assert m.mail_from == "a@example.test"
    assert m.rcpt_tos == ["b@example.test"]
    assert m.content == b"Subject: pipelined\r\n\r\nline 1\r\n.stuffed\r\n"


def test_slow_upstream_replies_in_order(scripted_mta, proxy):
    s = scripted_mta(reply_delay=0.1)
    p = proxy(s.port, pipeline_size=20)
    c = session_start(p)
    c.send(b"MAIL FROM:<a@x.test>\r\nRCPT TO:<r1@x.test>\r\nRCPT TO:<reject-r2@x.test>\r\n"
           b"RCPT TO:<r3@x.test>\r\nDATA\r\n")
    replies = c.read_replies(5)
    assert [r.text for r in replies] == [
        "250 2.1.0 Sender <a@x.test> ok",
        "250 2.1.5 <r1@x.test> ok",
        "550 5.1.1 <reject-r2@x.test> recipient rejected",
        "250 2.1.5 <r3@x.test> ok",
        "354 End data with <CR><LF>.<CR><LF>",
    ]
    c.send(b"x\r\n..y\r\n.\r\nQUIT\r\n")
    assert [r.code for r in c.read_replies(2)] == [250, 221]
    assert s.conns[0].messages == [b"x\r\n..y\r\n"]


def test_one_byte_writes(mta, proxy):
    p = proxy(mta.port)
    c = p.connect()
    c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    assert c.greeting().code == 220

    def trickle(data):
        for i in range(len(data)):
            c.send(data[i:i + 1])
            time.sleep(0.0005)     # pacing only, so that bytes travel in separate segments

    for line, code in [(b"EHLO tiny.test\r\n", 250), (b"MAIL FROM:<a@x.test>\r\n", 250),
                       (b"RCPT TO:<b@x.test>\r\n", 250), (b"DATA\r\n", 354)]:
        trickle(line)
        assert c.read_reply().code == code
    body = b"Subject: tiny\r\n\r\nQUIT\r\n..\r\nRSET\r\nend\r\n"
    trickle(body + b".\r\n")
    r = c.read_reply()
    assert r.code == 250
    trickle(b"QUIT\r\n")
    assert c.read_reply().code == 221
    (m,) = mta.wait_messages(1)
    assert m.content == b"Subject: tiny\r\n\r\nQUIT\r\n.\r\nRSET\r\nend\r\n"


def test_many_commands_in_one_write(mta, proxy):
    p = proxy(mta.port, pipeline_size=100)
    c = session_start(p)
    cmds = [b"NOOP"] * 10 + [b"RSET", b"MAIL FROM:<a@x.test>"] + \
        [f"RCPT TO:<r{i}@x.test>".encode() for i in range(5)] + [b"DATA"]
    c.send(b"".join(x + b"\r\n" for x in cmds))
    replies = c.read_replies(len(cmds))
    assert [r.code for r in replies] == [250] * 17 + [354]
    c.send(b"body\r\n.\r\nRSET\r\nNOOP\r\nQUIT\r\n")
    assert [r.code for r in c.read_replies(4)] == [250, 250, 250, 221]
    (m,) = mta.wait_messages(1)
    assert m.rcpt_tos == [f"r{i}@x.test" for i in range(5)]
    assert m.content == b"body\r\n"


def test_lower_and_mixed_case_verbs(mta, proxy):
    p = proxy(mta.port)
    c = p.connect()
    assert c.greeting().code == 220
    assert c.cmd("ehlo lower.test").code == 250
    assert c.cmd("mail from:<low@x.test>").code == 250
    assert c.cmd("RcPt To:<mixed@x.test>").code == 250
    assert c.cmd("data").code == 354
    # body lines that look like commands must not be taken for commands
    c.send(b"quit\r\nrset\r\nmail from:<evil@x.test>\r\n.\r\n")
    assert c.read_reply().code == 250
    assert c.cmd("quit").code == 221
    c.wait_closed()
    (m,) = mta.wait_messages(1)
    assert m.content == b"quit\r\nrset\r\nmail from:<evil@x.test>\r\n"
    assert m.rcpt_tos == ["mixed@x.test"]
    # the proxy tracked the lower-case dialogue: a transaction was logged
    sid = p.session_id(c.local)
    (t,) = p.wait_event("transaction", session=sid)
    assert t.get("from") == "<low@x.test>"
    assert t.get("result") == "250"
