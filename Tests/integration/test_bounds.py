"""What one hostile client or a confused MTA can make the proxy do: recipients per transaction and
address lengths are bounded (memory and log lines with them), and a reply the MTA sends while no command
waits for one never reaches the client as an answer."""

import socket
import subprocess

from conftest import (HOST, PROXY_NAME, SMTPGATE_BIN, ThreadedServer, close_quietly, start, wait_until)


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_recipients_over_max_recipients_get_452_and_the_rest_is_delivered(mta, proxy):
    p = proxy(mta.port, max_recipients=5)
    with start(p) as c:
        assert c.cmd("MAIL FROM:<a@client.test>").code == 250
        codes = [c.cmd(f"RCPT TO:<r{i}@mta.test>") for i in range(7)]
        assert [r.code for r in codes] == [250] * 5 + [452] * 2
        # aiosmtpd offers no ENHANCEDSTATUSCODES, so the proxy's own replies carry none either
        assert codes[5].text == f"452 {PROXY_NAME}: Too many recipients"
        assert c.cmd("DATA").code == 354
        assert c.cmd("Subject: many\r\n\r\nhi\r\n.").code == 250
        assert c.cmd("QUIT").code == 221
    msg = mta.wait_messages(1)[0]
    assert msg.rcpt_tos == [f"r{i}@mta.test" for i in range(5)]
    lim = p.wait_event("limit")[0]
    assert (lim.get("limit"), lim.get("value")) == ("max_recipients", "5")
    assert len(p.events("limit")) == 1
    assert p.wait_event("transaction")[0].get("rcpts") == "5"


def test_a_thousand_recipients_make_a_bounded_log_line(mta, proxy):
    p = proxy(mta.port, pipeline_size=2000)
    with start(p) as c:
        c.send(b"MAIL FROM:<a@client.test>\r\n" + b"".join(b"RCPT TO:<rcpt%d@mta.test>\r\n" % i for i in range(1200)))
        replies = c.read_replies(1201, timeout=30)
        assert [r.code for r in replies] == [250] * 1001 + [452] * 200
        assert c.cmd("DATA").code == 354
        assert c.cmd("Subject: many\r\n\r\nhi\r\n.", timeout=30).code == 250
    assert len(mta.wait_messages(1)[0].rcpt_tos) == 1000
    t = p.wait_event("transaction")[0]
    assert t.get("rcpts") == "1000"
    assert t.get("rcpts_unlisted") == "950"
    assert len(t.getall("rcpt")) == 50
    assert len(t.line) < 4096


def test_hostile_recipients_do_not_grow_memory(mta, proxy):
    # The case: 12,000 RCPT TO of 10 KB each took RSS from 24 MB to 370 MB and wrote a 120 MB line.
    p = proxy(mta.port)
    long_rcpt = b"RCPT TO:<" + b"x" * 10_000 + b"@mta.test>\r\n"
    with start(p) as c:
        assert c.cmd("MAIL FROM:<a@client.test>").code == 250
        before = rss_kib(p.pid)
        for _ in range(60):
            c.send(long_rcpt * 200)
            replies = c.read_replies(200, timeout=30)
            assert {r.text for r in replies} == {
                f"501 {PROXY_NAME}: recipient address too long (at most 256 octets)"}
        grown = rss_kib(p.pid) - before
        assert c.cmd("QUIT").code == 221
    assert grown < 20 * 1024, f"RSS grew by {grown} KiB for one session"
    t = p.wait_event("transaction")[0]
    assert t.get("rcpts") == "0"
    assert len(t.line) < 1024
    assert max(len(l) for l in p.log_lines()) < 4096
    assert b"RCPT" not in mta.raw_all()


class EarlyReplyMTA(ThreadedServer):
    """An MTA that says "250 queued" right after its 354 and then refuses the message at the dot."""

    name = "early-reply-mta"

    def __init__(self):
        self.bodies = []
        super().__init__()

    def _serve(self, s):
        s.settimeout(5)
        f = s.makefile("rb")
        try:
            s.sendall(b"220 early.test ESMTP\r\n")
            while True:
                line = f.readline()
                if not line:
                    return
                verb = line[:4].upper()
                if verb == b"DATA":
                    s.sendall(b"354 go ahead\r\n250 2.0.0 Ok: queued as EARLY\r\n")
                    body = b""
                    while not body.endswith(b"\r\n.\r\n"):
                        chunk = f.readline()
                        if not chunk:
                            return
                        body += chunk
                    self.bodies.append(body)
                    s.sendall(b"554 5.7.1 message not stored\r\n")
                elif verb == b"QUIT":
                    s.sendall(b"221 bye\r\n")
                    return
                elif verb == b"EHLO":
                    s.sendall(b"250-early.test\r\n250 PIPELINING\r\n")
                else:
                    s.sendall(b"250 ok\r\n")
        except OSError:
            pass
        finally:
            f.close()
            close_quietly(s)


def test_a_reply_inside_data_is_not_the_answer_to_the_dot(proxy):
    m = EarlyReplyMTA().start()
    try:
        p = proxy(m.port)
        with start(p) as c:
            assert c.cmd("MAIL FROM:<a@client.test>").code == 250
            assert c.cmd("RCPT TO:<b@early.test>").code == 250
            assert c.cmd("DATA").code == 354
            end = c.cmd("Subject: t\r\n\r\nhello\r\n.")
            assert end.code == 554, f"the client took {end.text!r} for the answer to its dot"
            assert c.cmd("NOOP").code == 250
            assert c.cmd("QUIT").code == 221
        wait_until(lambda: m.bodies, what="the MTA to get the message")
        err = p.wait_event("protocol_error")[0]
        assert (err.get("reason"), err.get("code")) == ("unsolicited_reply", "250")
        assert err.get("reply") == "250 2.0.0 Ok: queued as EARLY"
        assert p.wait_event("transaction")[0].get("result") == "554"
    finally:
        m.stop()


def test_invalid_utf8_in_a_config_names_the_line(tmp_path):
    cfg = tmp_path / "u.conf"
    cfg.write_bytes(b"mode fixed\nfixed_server 127.0.0.1\n# caf\xe9\nport 2525\n")
    r = subprocess.run([SMTPGATE_BIN, "check-config", str(cfg)], capture_output=True, timeout=10)
    assert r.returncode != 0
    assert f"{cfg}:3: line is not valid UTF-8 text" in r.stderr.decode("utf-8", "replace")
