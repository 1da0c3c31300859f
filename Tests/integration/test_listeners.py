"""Several SMTP listeners in one daemon (issue 11): an MX-proxy pair with different policies, SIGHUP
adding/removing/rebinding listeners while sessions stay open, and the config file's section errors.

Every config here is a text with ``[listener]``/``[forward]`` sections, written by the test; the daemon
is conftest's ``proxy`` (started with ``run --config FILE --log-file LOG``, stopped with SIGTERM).
"""
import signal
import socket

import pytest

from conftest import HOST, PROXY_NAME, Client, free_port, port_listening, wait_until
from forwardkit import Backend, echo_handler, echo_roundtrip, run_cli, sectioned


def head(p, extra=""):
    """The global part: daemon options and every listener's defaults."""
    return f"""# written by test_listeners.py
proxy_name {PROXY_NAME}
pidfile {p.pidfile}
control_path {p.control_path}
mode fixed
bind_address {HOST}
fixed_server {HOST}
fixed_server_port {p.upstream_port}
timeout_connect 3
timeout_idle 10
timeout_session 10
shutdown_timeout 5
{extra}
"""


def mail(port, rcpts, source=HOST, body=b"Subject: t\r\n\r\nhello\r\n"):
    """One SMTP transaction; returns {'greeting', 'ehlo', 'mail', 'rcpt': [codes/texts], 'data', 'end'}."""
    out = {}
    with Client(port, source=source) as c:
        out["greeting"] = c.greeting().code
        out["ehlo"] = c.cmd("EHLO client.example.test").code
        out["mail"] = c.cmd("MAIL FROM:<sender@example.org>").text
        out["rcpt"] = [c.cmd(f"RCPT TO:<{r}>").text for r in rcpts]
        if any(t.startswith("250") for t in out["rcpt"]):
            out["data"] = c.cmd("DATA").code
            if out["data"] == 354:
                c.send(body + b".\r\n")
                out["end"] = c.read_reply().text
        c.cmd("QUIT")
        out["local"] = c.local
    return out


# --------------------------------------------------------------------------
# 1. an MX proxy: inbound and outbound listeners with their own policies
# --------------------------------------------------------------------------

def can_bind(addr):
    try:
        with socket.socket() as s:
            s.bind((addr, 0))
        return True
    except OSError:
        return False


def test_inbound_and_outbound_listeners_apply_their_own_restrictions(mta, proxy, tmp_path):
    if not can_bind("127.0.0.2"):
        pytest.skip("127.0.0.2 cannot be bound as a source address here")
    access = tmp_path / "recipient_access"
    access.write_text("blocked@example.net REJECT not here\n"
                      "gone@example.net 550 5.1.1 no such mailbox\n")
    p = proxy(mta.port, start=False)
    inbound, outbound = free_port(), free_port()
    p.port = inbound
    sectioned(p, head(p) + f"""
[listener inbound]
port {inbound}
recipient_restrictions check_recipient_access texthash:{access}, permit

[listener outbound]
port {outbound}
client_restrictions permit_mynetworks, reject
mynetworks 127.0.0.2/32
""", wait_ports=[outbound])
    (st,) = p.wait_event("start")
    assert st.get("listeners") == "inbound,outbound"
    assert st.get("address") == f"{HOST}:{inbound}"
    listening = {r.get("listener"): (r.get("kind"), r.get("address")) for r in p.wait_event("listening", count=2)}
    assert listening == {"inbound": ("smtp", f"{HOST}:{inbound}"), "outbound": ("smtp", f"{HOST}:{outbound}")}

    # inbound: the map refuses two recipients with its own codes, the third goes through; no client
    # restriction here, so 127.0.0.1 (outside outbound's mynetworks) is served
    r_in = mail(inbound, ["blocked@example.net", "gone@example.net", "user@example.net"])
    assert r_in["greeting"] == 220 and r_in["ehlo"] == 250
    assert r_in["rcpt"][0] == "554 <blocked@example.net>: Recipient address rejected: not here"
    # the map's own code (SMTPGate sends no enhanced status codes: the map's 5.1.1 is not repeated)
    assert r_in["rcpt"][1] == "550 <gone@example.net>: Recipient address rejected: no such mailbox", r_in
    assert r_in["rcpt"][2].startswith("250"), r_in
    assert r_in["end"].startswith("250"), r_in

    # outbound: 127.0.0.1 is not in mynetworks -> rejected; the same recipient the inbound map
    # refuses is relayed for 127.0.0.2 (that map is not outbound's)
    r_out_bad = mail(outbound, ["user@example.net"])
    assert r_out_bad["greeting"] == 220
    assert r_out_bad["rcpt"][0][:1] == "5" or r_out_bad["mail"][:1] == "5", r_out_bad
    assert "end" not in r_out_bad
    r_out_ok = mail(outbound, ["blocked@example.net"], source="127.0.0.2",
                    body=b"Subject: out\r\n\r\nfrom the office\r\n")
    assert r_out_ok["rcpt"] == [r_out_ok["rcpt"][0]] and r_out_ok["rcpt"][0].startswith("250"), r_out_ok
    assert r_out_ok["end"].startswith("250"), r_out_ok

    msgs = mta.wait_messages(2)
    assert len(msgs) == 2, msgs
    assert msgs[0].rcpt_tos == ["user@example.net"]
    assert msgs[0].content == b"Subject: t\r\n\r\nhello\r\n"
    assert msgs[1].rcpt_tos == ["blocked@example.net"]
    assert msgs[1].content == b"Subject: out\r\n\r\nfrom the office\r\n"
    # the MTA never saw the refused recipients nor the refused client's transaction
    raw = mta.raw_all()
    assert b"gone@example.net" not in raw
    assert raw.count(b"RCPT TO:<blocked@example.net>") == 1

    # every session's lines name their listener
    opens = {r.get("client"): r for r in p.wait_event("open", count=3)}
    assert opens[r_in["local"]].get("listener") == "inbound"
    assert opens[r_out_bad["local"]].get("listener") == "outbound"
    assert opens[r_out_ok["local"]].get("listener") == "outbound"
    for res in (r_in, r_out_bad, r_out_ok):
        sid = opens[res["local"]].get("session")
        p.wait_close(sid)
        want = opens[res["local"]].get("listener")
        with_listener = [r for r in p.session_records(sid) if r.get("listener") is not None]
        assert all(r.get("listener") == want for r in with_listener), with_listener


# --------------------------------------------------------------------------
# 6. SIGHUP: add, remove, rebind; a failed reload changes nothing
# --------------------------------------------------------------------------

def forward_section(name, port, backend_port, extra=""):
    return f"""
[forward {name}]
bind_address {HOST}
port {port}
mode fixed
fixed_server {HOST}
fixed_server_port {backend_port}
{extra}"""


def reload(p, text, result="ok"):
    before = len(p.events("reload"))
    p.write_config(text)
    p.signal(signal.SIGHUP)
    recs = wait_until(lambda: (lambda r: r[before:] or None)(p.events("reload")),
                      what=lambda: f"a reload line; log:\n{p.log_text()[-3000:]}")
    assert len(recs) == 1, recs
    assert recs[0].get("result") == result, recs[0]
    return recs[0]


def refused(port):
    try:
        socket.create_connection((HOST, port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


def test_reload_adds_and_removes_listeners_and_an_open_session_completes(mta, proxy):
    with Backend(echo_handler) as echo:
        p = proxy(mta.port, start=False)
        a, b, c_port = free_port(), free_port(), free_port()
        p.port = a
        base = head(p) + f"\n[listener a]\nport {a}\n"
        sectioned(p, base + forward_section("b", b, echo.port), wait_ports=[b])
        assert echo_roundtrip(b, b"before")[0] == b"before"

        # an SMTP session on a, mid-transaction across the reload
        s = Client(a)
        assert s.greeting().code == 220
        assert s.cmd("EHLO client.test").code == 250
        assert s.cmd("MAIL FROM:<kept@example.org>").code == 250

        rec = reload(p, base + f"\n[listener c]\nport {c_port}\n")
        assert rec.get("added") == "c" and rec.get("removed") == "b" and rec.get("rebound") == "-", rec
        assert rec.get("listeners") == "a,c", rec
        (stopped,) = p.wait_event("listener_stopped", listener="b")
        assert stopped.get("sessions") == "0"
        (new,) = p.wait_event("listening", listener="c")
        assert new.get("kind") == "smtp" and new.get("address") == f"{HOST}:{c_port}"
        assert not p.events("listening", listener="a")[1:], "a was kept, not rebound"

        wait_until(lambda: refused(b), what=f"removed forward b's port {b} refusing")
        r = mail(c_port, ["new@example.net"], body=b"Subject: c\r\n\r\nvia c\r\n")
        assert r["end"].startswith("250"), r
        (oc,) = p.wait_event("open", client=r["local"])
        assert oc.get("listener") == "c"

        # the session opened before the reload goes on to a delivered message
        assert s.cmd("RCPT TO:<kept@example.net>").code == 250
        assert s.cmd("DATA").code == 354
        s.send(b"Subject: kept\r\n\r\nopened before the reload\r\n.\r\n")
        assert s.read_reply().code == 250
        assert s.cmd("QUIT").code == 221
        s.close()
        msgs = mta.wait_messages(2)
        by_rcpt = {tuple(m.rcpt_tos): m for m in msgs}
        assert by_rcpt[("kept@example.net",)].content == b"Subject: kept\r\n\r\nopened before the reload\r\n"
        assert by_rcpt[("new@example.net",)].content == b"Subject: c\r\n\r\nvia c\r\n"


def test_reload_removing_a_forward_lets_its_open_session_run_until_shutdown_timeout(proxy):
    with Backend(echo_handler) as echo:
        p = proxy(1, start=False)
        a, b = free_port(), free_port()
        p.port = a
        base = head(p).replace("shutdown_timeout 5", "shutdown_timeout 2") + f"\n[listener a]\nport {a}\n"
        sectioned(p, base + forward_section("b", b, echo.port), wait_ports=[b])
        c = socket.create_connection((HOST, b), timeout=5)
        c.sendall(b"one")
        assert c.recv(10) == b"one"
        reload(p, base)
        (stopped,) = p.wait_event("listener_stopped", listener="b")
        assert stopped.get("sessions") == "1"
        wait_until(lambda: refused(b), what="b's port refusing")
        # still relayed after the reload
        c.sendall(b"two")
        assert c.recv(10) == b"two"
        # then closed by the daemon within shutdown_timeout (2s) plus slack
        c.settimeout(6)
        try:
            rest = c.recv(10)
        except ConnectionResetError:
            rest = b""
        assert rest == b""
        c.close()
        (fw,) = p.wait_event("forward", listener="b")
        assert fw.get("result") == "shutdown", fw
        assert fw.get("bytes_in") == "6" and fw.get("bytes_out") == "6", fw
        assert 1.5 <= float(fw.get("duration")) <= 6, fw


def test_reload_onto_a_port_another_process_holds_fails_and_keeps_everything(mta, proxy):
    busy = socket.socket()
    busy.bind((HOST, 0))
    busy.listen(1)
    taken = busy.getsockname()[1]
    try:
        p = proxy(mta.port, start=False)
        a, other = free_port(), free_port()
        p.port = a
        base = head(p) + f"\n[listener a]\nport {a}\n"
        sectioned(p, base)
        rec = reload(p, base + f"\n[listener d]\nport {taken}\n\n[listener e]\nport {other}\n", result="failed")
        assert str(taken) in rec.get("error") and "in use" in rec.get("error"), rec
        assert rec.get("kept") is not None, rec
        assert not port_listening(other), "a failed reload opened none of its new ports"
        assert p.events("listening", listener="d") == [] and p.events("listening", listener="e") == []
        r = mail(a, ["still@example.net"])
        assert r["end"].startswith("250"), r
        # the port's owner is untouched: it still gets the connections
        t = socket.create_connection((HOST, taken), timeout=2)
        conn, _ = busy.accept()
        conn.close()
        t.close()
    finally:
        busy.close()


def test_reload_changing_a_port_rebinds_the_listener(mta, proxy):
    p = proxy(mta.port, start=False)
    a, a2 = free_port(), free_port()
    p.port = a
    sectioned(p, head(p) + f"\n[listener a]\nport {a}\n")
    s = Client(a)
    assert s.greeting().code == 220
    rec = reload(p, head(p) + f"\n[listener a]\nport {a2}\n")
    assert rec.get("rebound") == "a" and rec.get("added") == "-" and rec.get("removed") == "-", rec
    (new,) = p.wait_event("listening", listener="a", address=f"{HOST}:{a2}")
    p.wait_event("listener_stopped", listener="a")
    wait_until(lambda: refused(a), what=f"old port {a} refusing")
    r = mail(a2, ["moved@example.net"])
    assert r["end"].startswith("250"), r
    # the session accepted on the old socket goes on
    assert s.cmd("EHLO client.test").code == 250
    assert s.cmd("QUIT").code == 221
    s.close()


# --------------------------------------------------------------------------
# 7. check-config: the sections' output, and section errors with FILE:LINE
# --------------------------------------------------------------------------

def check(tmp_path, text, name="smtpgate.conf"):
    f = tmp_path / name
    f.write_text(text)
    r = run_cli("check-config", f)
    return r.returncode, r.stdout.decode(), r.stderr.decode(), f


def blocks(out):
    """check-config output -> {header: [lines]}; the daemon's part is under '#daemon'."""
    res, cur = {}, "#daemon"
    for line in out.splitlines():
        if line.startswith("[") and line.endswith("]"):
            cur = line
            res[cur] = []
        elif line:
            res.setdefault(cur, []).append(line)
    return res


def test_check_config_prints_each_section_with_its_effective_options(tmp_path):
    rc, out, err, f = check(tmp_path, f"""# globals: daemon options and defaults
mode fixed
bind_address {HOST}
fixed_server {HOST}
fixed_server_port 2525
timeout_idle 77
shutdown_timeout 9
allow 127.0.0.*
deny 127.0.0.9

[listener inbound]
port 2500
recipient_restrictions permit

[listener outbound]
port 2587
timeout_idle 30
client_restrictions permit_mynetworks, reject

[forward web]
port 10001-10003
fixed_server_port 8001-8003
max_connections 5
allow 127.0.0.1
allow 127.0.0.0/30
deny 127.0.0.2
""")
    assert rc == 0, err
    assert err == ""
    assert out.splitlines()[0] == "# the daemon's options (before the first section)"
    b = blocks(out)
    assert list(b) == ["#daemon", "[listener inbound]", "[listener outbound]", "[forward web]"], list(b)
    assert "shutdown_timeout 9" in b["#daemon"]
    assert "allow 127.0.0.*" in b["#daemon"] and "deny 127.0.0.9" in b["#daemon"]
    # listeners: global defaults, then their own overrides
    assert "port 2500" in b["[listener inbound]"] and "timeout_idle 77" in b["[listener inbound]"]
    assert "recipient_restrictions permit" in b["[listener inbound]"]
    assert "# client_restrictions (not set)" in b["[listener inbound]"]
    assert "port 2587" in b["[listener outbound]"] and "timeout_idle 30" in b["[listener outbound]"]
    assert "client_restrictions permit_mynetworks, reject" in b["[listener outbound]"]
    # the daemon's options are not repeated per listener
    assert not any(l.startswith("shutdown_timeout") for l in b["[listener inbound]"])
    fw = b["[forward web]"]
    assert "port 10001-10003" in fw and "fixed_server_port 8001-8003" in fw and "mode fixed" in fw
    assert "max_connections 5" in fw and "timeout_idle 77" in fw and f"bind_address {HOST}" in fw
    assert fw[-3:] == ["allow 127.0.0.1", "allow 127.0.0.0/30", "deny 127.0.0.2"], fw
    # no SMTP-only options in a forward's block
    assert not any(l.lstrip("# ").startswith(("recipient_restrictions", "client_restrictions", "max_recipients",
                                               "timeout_session", "antivirus_type")) for l in fw), fw


def test_check_config_warns_about_allow_star_behind_global_allows(tmp_path):
    rc, out, err, f = check(tmp_path, f"""mode fixed
fixed_server {HOST}
allow 10.*
[forward web]
bind_address {HOST}
port 10001
fixed_server_port 8001
allow *
""")
    assert rc == 0, err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"{f}: warning: forward web: allow * admits only what the global allow rules admit"), err


@pytest.mark.parametrize("name,text,line,words", [
    ("smtp option in a forward", "mode fixed\nfixed_server 127.0.0.1\n[forward f]\nport 1000\nfixed_server_port 2000\n"
     "recipient_restrictions permit\n", 6, ["recipient_restrictions", "[forward]"]),
    ("max_recipients in a forward", "mode fixed\nfixed_server 127.0.0.1\nport 25\n[forward f]\nport 2499\n"
     "fixed_server_port 99\nmax_recipients 5\n", 7, ["max_recipients"]),
    ("allow in a listener", "mode fixed\nfixed_server 127.0.0.1\n[listener l]\nport 25\n# a comment\nallow 127.0.0.1\n",
     6, ["allow", "client_restrictions"]),
    ("daemon option in a section", "[forward f]\nmode fixed\nport 2499\nfixed_server 127.0.0.1\nfixed_server_port 99\n"
     "set_user nobody\n", 6, ["set_user", "before the first section"]),
    ("duplicate names across kinds", "mode fixed\nfixed_server 127.0.0.1\n[listener a]\nport 25\n\n[forward a]\nport 26\n"
     "fixed_server_port 27\n", 6, ["'a'", "line 3"]),
    ("same port twice", "mode fixed\nfixed_server 127.0.0.1\nbind_address 127.0.0.1\n[listener a]\nport 2500\n"
     "[listener b]\nport 2500\n", 6, ["'b'", "'a'"]),
    ("wildcard address covers a range", "mode fixed\nfixed_server 127.0.0.1\n[listener a]\nbind_address 0.0.0.0\n"
     "port 2500\n[forward f]\nbind_address 127.0.0.1\nport 2499-2501\nfixed_server_port 1-3\n", 6, ["'f'", "'a' (line 3)"]),
    ("ranges of different lengths", "mode fixed\nfixed_server 127.0.0.1\n[forward f]\nport 2499-2501\n"
     "fixed_server_port 1-2\n", 5, ["2 ports", "has 3"]),
    ("unknown section kind", "mode fixed\nfixed_server 127.0.0.1\nport 25\n[bogus x]\n", 4, ["bogus"]),
    ("host name in a pattern", "allow foo.example.com\n[forward f]\nmode fixed\nport 2499\nfixed_server 127.0.0.1\n"
     "fixed_server_port 99\n", 1, ["foo.example.com"]),
])
def test_section_errors_name_file_and_line_and_exit_1(tmp_path, name, text, line, words):
    rc, out, err, f = check(tmp_path, text)
    assert rc == 1, (out, err)
    msg = err.strip()
    assert len(msg.splitlines()) == 1, err
    assert msg.startswith(f"{f}:{line}: "), err
    for w in words:
        assert w in msg, (w, err)


def test_run_refuses_a_bad_section_file_with_the_same_message(tmp_path):
    f = tmp_path / "bad.conf"
    f.write_text("mode fixed\nfixed_server 127.0.0.1\n[listener l]\nport 25\nallow 127.0.0.1\n")
    r = run_cli("run", "--config", f, "--log-file", tmp_path / "bad.log")
    assert r.returncode != 0
    assert f"{f}:5: option 'allow'" in r.stderr.decode(), r.stderr


def test_overlap_error_names_the_port_that_overlaps(tmp_path):
    rc, out, err, f = check(tmp_path, "mode fixed\nfixed_server 127.0.0.1\n[listener a]\nbind_address 0.0.0.0\n"
                                      "port 2500\n[forward f]\nbind_address 127.0.0.1\nport 2499-2501\n"
                                      "fixed_server_port 1-3\n")
    assert rc == 1
    assert err.strip() == (f"{f}:6: 'f' listens on 127.0.0.1:2500, which 'a' (line 3) already listens on "
                           "0.0.0.0:2500 covers: give one of them another port or address"), err


# --------------------------------------------------------------------------
# one table of locks for every listener and forward
# --------------------------------------------------------------------------

def test_a_client_locked_by_hand_is_refused_on_every_listener_and_forward(mta, proxy, tmp_path):
    if not can_bind("127.0.0.2"):
        pytest.skip("127.0.0.2 cannot be bound as a source address here")
    with Backend(echo_handler) as echo:
        p = proxy(mta.port, start=False)
        a, b, f = free_port(), free_port(), free_port()
        p.port = a
        (tmp_path / "state").mkdir()
        sectioned(p, head(p, f"state_store sqlite:{tmp_path}/state/state.db\n")
                  + f"\n[listener a]\nport {a}\n\n[listener b]\nport {b}\n" + forward_section("f", f, echo.port),
                  wait_ports=[b, f])
        r = run_cli("locks", "add", "127.0.0.2", "--for", "600", "--reason", "test", "--config", p.config_path)
        assert r.returncode == 0, r.stderr
        p.wait_event("lock", source="admin")
        for port in (a, b):
            with Client(port, source="127.0.0.2") as c:
                rep = c.read_reply()
                assert rep.code == 554 and "locked" in rep.text, rep
            with Client(port) as c:                      # 127.0.0.1 is not locked
                assert c.greeting().code == 220
        got, local = echo_roundtrip(f, b"x", source="127.0.0.2")
        assert got == b""
        (fw,) = p.wait_event("forward", client=local)
        assert fw.get("result") == "locked" and fw.level == "notice", fw
        assert echo_roundtrip(f, b"y")[0] == b"y"
        assert [peer[0] for _, peer in echo.peers] == ["127.0.0.1"], "the locked client never reached the backend"


# --------------------------------------------------------------------------
# a port another smtpgate holds (SO_REUSEPORT)
# --------------------------------------------------------------------------

def test_a_second_daemon_cannot_start_on_a_port_the_first_listens_on(proxy):
    """Every listening socket sets SO_REUSEPORT; without the probe the kernel would let a second smtpgate
    of the same user bind the port and split the connections between the two daemons."""
    with Backend(echo_handler) as echo:
        p1 = proxy(1, start=False)
        fport = free_port()
        p1.port = fport
        sectioned(p1, head(p1).replace("mode fixed\n", "") + forward_section("f", fport, echo.port))
        p2 = proxy(1, start=False)
        p2.port = fport
        p2.expect_exit = True
        sectioned(p2, head(p2).replace("mode fixed\n", "") + forward_section("f", fport, echo.port))
        rc = p2.wait_exit(5)
        assert rc != 0 and "in use" in p2.stderr(), (rc, p2.stderr())


def test_reload_changing_a_listeners_policy_keeps_its_socket_and_the_other_listener(mta, proxy, tmp_path):
    access = tmp_path / "access"
    access.write_text("blocked@example.net REJECT not here\n")
    p = proxy(mta.port, start=False)
    a, b = free_port(), free_port()
    p.port = a
    base = head(p) + f"\n[listener a]\nport {a}\n"
    sectioned(p, base + f"\n[listener b]\nport {b}\n", wait_ports=[b])
    assert mail(a, ["blocked@example.net"])["rcpt"][0].startswith("250")
    rec = reload(p, base + f"recipient_restrictions check_recipient_access texthash:{access}, permit\n"
                           f"\n[listener b]\nport {b}\nmax_connections 1\n")
    assert rec.get("rebound") == "-" and rec.get("added") == "-" and rec.get("removed") == "-", rec
    assert p.events("listener_stopped") == []
    assert mail(a, ["blocked@example.net"])["rcpt"][0] == \
        "554 <blocked@example.net>: Recipient address rejected: not here"
    r = mail(b, ["blocked@example.net"])
    assert r["rcpt"][0].startswith("250"), "b has no such map"
    # the client has quit; b's slot is free once the proxy has closed that session
    p.wait_event("close", client=r["local"])
    # max_connections counts b's own sessions: a second on b is refused, a is not affected
    with Client(b) as first:
        assert first.greeting().code == 220
        with Client(b) as second:
            r = second.read_reply()
            assert r.text == f"554 5.7.0 {PROXY_NAME}: too many connections (max_connections 1)", r
        with Client(a) as other:
            assert other.greeting().code == 220


def test_reload_renaming_a_listener_on_the_same_port_hands_the_port_over(mta, proxy):
    p = proxy(mta.port, start=False)
    a = free_port()
    p.port = a
    sectioned(p, head(p) + f"\n[listener old]\nport {a}\n")
    s = Client(a)
    assert s.greeting().code == 220
    rec = reload(p, head(p).replace("shutdown_timeout 5", "shutdown_timeout 2") + f"\n[listener new]\nport {a}\n")
    assert rec.get("added") == "new" and rec.get("removed") == "old", rec
    (stopped,) = p.wait_event("listener_stopped", listener="old")
    assert stopped.get("sessions") == "1"
    assert port_listening(a)
    r = mail(a, ["renamed@example.net"])
    assert r["end"].startswith("250"), r
    assert p.wait_event("open", client=r["local"])[0].get("listener") == "new"
    # the old listener's session still works, then is ended within the (new) shutdown_timeout
    assert s.cmd("EHLO client.test").code == 250
    rest = s.wait_closed(timeout=8)
    s.close()
    assert rest == b"" or rest.startswith(b"421"), rest
    (close,) = p.wait_event("close", listener="old")


def test_reload_introducing_overlapping_ends_fails_with_file_and_line(mta, proxy):
    p = proxy(mta.port, start=False)
    a, b = free_port(), free_port()
    p.port = a
    base = head(p) + f"\n[listener a]\nport {a}\n"
    sectioned(p, base)
    text = base + f"\n[listener b]\nbind_address 0.0.0.0\nport {a}\n"
    rec = reload(p, text, result="failed")
    line = text.splitlines().index("[listener b]") + 1
    assert f"{p.config_path}:{line}:" in rec.get("error") and "'a'" in rec.get("error"), rec
    assert mail(a, ["x@example.net"])["end"].startswith("250")
    assert p.events("listening", listener="b") == []


def test_a_listener_with_its_own_rate_limit_counts_apart_and_its_lock_holds_everywhere(mta, proxy, tmp_path):
    """The MX-proxy pair: inbound unlimited, outbound (submission) at one message an hour and locking for
    it; counts on one listener never use up the other's, and a lock made on outbound refuses inbound too."""
    from test_ratelimit import fresh_bucket, reply_451, LOCKED
    fresh_bucket(3600, 60)
    p = proxy(mta.port, start=False)
    inbound, outbound = free_port(), free_port()
    p.port = inbound
    text = head(p, f"state_store sqlite:{tmp_path}/state/state.db\n") + (
        f"\n[listener in]\nport {inbound}\n"
        f"\n[listener out]\nport {outbound}\nratelimit_messages 1/1h\nlock_on ratelimit\nlock_duration 600\n")
    sectioned(p, text, wait_ports=[outbound])
    for _ in range(2):
        assert mail(inbound, ["bob@example.net"])["end"].startswith("250"), "in has no limit"
    first = mail(outbound, ["bob@example.net"])
    assert first["end"].startswith("250"), "in's two messages are not out's"
    show = run_cli("locks", "show", "127.0.0.1", "--config", str(p.config_path))
    assert "[listener out] ratelimit_messages 1.0 of 1 in 3600 s" in show.stdout.decode(), show
    second = mail(outbound, ["bob@example.net"])
    assert second["mail"] == reply_451("messages", 1, 3600, 1), second
    (lock,) = p.wait_event("lock")
    assert (lock.get("key"), lock.get("lock_cause"), lock.get("listener")) == ("127.0.0.1", "ratelimit", "out"), lock
    with Client(inbound) as c:
        r = c.read_reply()
    assert LOCKED.match(r.text), r
    (rej,) = p.wait_event("reject", reason="locked")
    assert rej.get("listener") == "in", rej
