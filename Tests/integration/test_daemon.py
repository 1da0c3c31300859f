"""The daemon: check-config (good, bad, unknown option, unsupported mode),
refusing to run on a bad file, SIGHUP reload (a bad file keeps the running
configuration and logs FILE:LINE; a good one takes effect for new sessions),
SIGTERM drain (listener closed, open session finishes, exit 0, pidfile
removed) and its bound (421 4.3.2).
"""

import os
import re
import signal
import socket
import subprocess

import pytest

from conftest import HOST, PROXY_NAME, SMTPGATE_BIN, wait_until, port_listening, free_port

ALL_OPTIONS_WITH_DEFAULTS = [
    "proxy_name", "bind_address", "port", "mode", "fixed_server", "fixed_server_port",
    "connect_queue", "pipeline_size", "on_takeover_cmds", "max_connections", "max_per_host",
    "timeout_connect", "timeout_idle", "timeout_direct", "timeout_session", "forbid_starttls",
    "log_helo", "log_mail_from", "log_rcpt_to", "shutdown_timeout",
]


def check_config(path):
    if not os.path.exists(SMTPGATE_BIN):
        pytest.fail(f"smtpgate binary not found at {SMTPGATE_BIN}")
    r = subprocess.run([SMTPGATE_BIN, "check-config", str(path)], capture_output=True, timeout=10)
    return r.returncode, r.stdout.decode("utf-8", "replace"), r.stderr.decode("utf-8", "replace")


def parse_effective(out):
    eff = {}
    for line in out.splitlines():
        if line.strip():
            k, _, v = line.partition(" ")
            eff[k] = v.strip()
    return eff


def test_check_config_good(tmp_path):
    cfg = tmp_path / "good.conf"
    cfg.write_text("# a comment\n; another comment\n\nmode fixed\nfixed_server 127.0.0.1\n"
                   "port 2525\nproxy_name cc-test\ntimeout_idle 0.5\nforbid_starttls on\n")
    rc, out, err = check_config(cfg)
    assert rc == 0, err
    eff = parse_effective(out)
    assert eff["port"] == "2525"
    assert eff["mode"] == "fixed"
    assert eff["proxy_name"] == "cc-test"
    assert eff["fixed_server"] == "127.0.0.1"
    assert eff["fixed_server_port"] == "25"
    assert eff["bind_address"] == "0.0.0.0"
    assert float(eff["timeout_idle"]) == 0.5
    assert float(eff["shutdown_timeout"]) == 30
    assert eff["forbid_starttls"].lower() in ("1", "yes", "on", "true")
    missing = [o for o in ALL_OPTIONS_WITH_DEFAULTS if o not in eff]
    assert not missing, f"options missing from check-config output: {missing}"


def test_check_config_defaults_and_ipv6(tmp_path):
    cfg = tmp_path / "min.conf"
    cfg.write_text("mode fixed\nfixed_server ::1\n")
    rc, out, err = check_config(cfg)
    assert rc == 0, err
    eff = parse_effective(out)
    assert eff["port"] == "9199"
    assert eff["fixed_server"] == "::1"
    assert eff["fixed_server_port"] == "25"


BAD_CASES = [
    ("port 99999", "option 'port'"),
    ("foo bar", "unknown option 'foo'"),
    ("timeout_idle soon", "option 'timeout_idle'"),
    ("forbid_starttls maybe", "option 'forbid_starttls'"),
    ("fixed_server not-an-ip", "option 'fixed_server'"),
    ("mode netfilter-ish", "unknown mode 'netfilter-ish'"),
]


def write_bad(tmp_path, bad):
    cfg = tmp_path / "bad.conf"
    if bad.startswith("mode "):
        lines = ["# bad config", "fixed_server 127.0.0.1", "; comment", bad]
    else:
        lines = ["# bad config", "mode fixed", "fixed_server 127.0.0.1", bad]
    cfg.write_text("\n".join(lines) + "\n")
    return cfg


@pytest.mark.parametrize("bad,msg", BAD_CASES)
def test_check_config_bad(tmp_path, bad, msg):
    cfg = write_bad(tmp_path, bad)
    rc, out, err = check_config(cfg)
    assert rc == 1
    lines = [l for l in err.splitlines() if l.startswith(f"{cfg}:4:")]
    assert lines, f"expected '{cfg}:4: ...' on stderr, got {err!r}"
    assert msg in lines[0], lines[0]


def test_check_config_reports_every_error_with_a_suggestion(tmp_path):
    cfg = tmp_path / "typos.conf"
    cfg.write_text("mode fixed\nfixed_server 127.0.0.1\ntimout_idle 10\nport 99999\nratelimit_conections 10/60\n")
    rc, out, err = check_config(cfg)
    assert rc == 1 and out == ""
    assert err.splitlines() == [
        f"{cfg}:3: unknown option 'timout_idle' (did you mean 'timeout_idle'?)",
        next(l for l in err.splitlines() if l.startswith(f"{cfg}:4: option 'port'")),
        f"{cfg}:5: unknown option 'ratelimit_conections' (did you mean 'ratelimit_connections'?)",
    ], err


def test_run_refuses_bad_config(tmp_path):
    port = free_port()
    cfg = tmp_path / "bad.conf"
    cfg.write_text(f"mode fixed\nfixed_server 127.0.0.1\nbind_address 127.0.0.1\nport {port}\nfoo bar\n")
    r = subprocess.run([SMTPGATE_BIN, "run", "--config", str(cfg)], capture_output=True, timeout=10)
    assert r.returncode != 0
    assert f"{cfg}:5:" in r.stderr.decode("utf-8", "replace")
    assert not port_listening(port)


def test_version_has_one_answer():
    a = subprocess.run([SMTPGATE_BIN, "version"], capture_output=True, timeout=10)
    b = subprocess.run([SMTPGATE_BIN, "--version"], capture_output=True, timeout=10)
    assert a.returncode == b.returncode == 0
    assert re.fullmatch(rb"smtpgate \d+\.\d+\.\d+\n", a.stdout)
    assert a.stdout == b.stdout


def bdat_name(p):
    """proxy_name as it appears in a reply the proxy writes itself (BDAT refusal)."""
    c = p.connect()
    assert c.greeting().code == 220
    assert c.cmd("EHLO reload.test").code == 250
    r = c.cmd("BDAT 0 LAST")
    c.cmd("QUIT")
    c.close()
    assert r.code == 502, r
    return r.text.split(" ")[2].rstrip(":")


def reload_result(rec):
    """``reload ok`` / ``reload failed``: a bare word, or result=ok|failed."""
    for w in ("ok", "failed"):
        if w in rec.words or rec.get("result") == w:
            return w
    return None


def test_sighup_reload(scripted_mta, proxy):
    s = scripted_mta()
    p = proxy(s.port, proxy_name="gate-one")
    assert bdat_name(p) == "gate-one"

    # a broken file: the running configuration stays
    p.options["proxy_name"] = "gate-bad"
    text = p.config_text() + "max_per_host lots\n"
    bad_line = len(text.splitlines())
    p.write_config(text)
    p.signal(signal.SIGHUP)
    rec = wait_until(lambda: [r for r in p.events("reload") if reload_result(r) == "failed"],
                     what="reload failed")[0]
    assert rec.level == "error"
    assert f"{p.config_path}:{bad_line}" in rec.get("error")
    assert p.alive()
    assert port_listening(p.port)
    assert bdat_name(p) == "gate-one"

    # a good file takes effect for new sessions
    p.options["proxy_name"] = "gate-two"
    p.write_config()
    p.signal(signal.SIGHUP)
    wait_until(lambda: [r for r in p.events("reload") if reload_result(r) == "ok"], what="reload ok")
    assert bdat_name(p) == "gate-two"
    assert p.alive()


def test_pidfile_and_clean_stop(mta, proxy):
    p = proxy(mta.port)
    assert p.pidfile.read_text().strip() == str(p.pid)
    (st,) = p.wait_event("start")
    assert st.get("address") == f"{HOST}:{p.port}"
    assert st.get("version")
    p.expect_exit = True
    p.signal(signal.SIGTERM)
    assert p.wait_exit(8) == 0
    assert not p.pidfile.exists()
    p.wait_event("stop", timeout=1)


def test_sigterm_drains_open_session(mta, proxy):
    p = proxy(mta.port, shutdown_timeout=10, timeout_idle=10)
    c = p.connect()
    assert c.greeting().code == 220
    assert c.cmd("EHLO drain.test").code == 250
    assert c.cmd("MAIL FROM:<a@x.test>").code == 250
    assert c.cmd("RCPT TO:<b@x.test>").code == 250
    p.expect_exit = True
    p.signal(signal.SIGTERM)
    wait_until(lambda: not port_listening(p.port), timeout=5, what="listener closed after SIGTERM")
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((HOST, p.port), timeout=2).close()
    assert p.alive(), "the daemon must wait for the open session"
    assert c.cmd("DATA").code == 354
    c.send(b"drained\r\n.\r\n")
    assert c.read_reply().code == 250
    assert c.cmd("QUIT").code == 221
    c.close()
    assert p.wait_exit(8) == 0
    (m,) = mta.wait_messages(1)
    assert m.content == b"drained\r\n"
    assert not p.pidfile.exists()
    p.wait_event("stop", timeout=1)


def test_sigterm_drain_bound(scripted_mta, proxy):
    s = scripted_mta()
    p = proxy(s.port, shutdown_timeout=1, timeout_idle=30)
    c = p.connect()
    assert c.greeting().code == 220
    assert c.cmd("EHLO slowpoke.test").code == 250
    p.expect_exit = True
    p.signal(signal.SIGTERM)
    r = c.read_reply(timeout=8)
    assert r.raw == f"421 4.3.2 {PROXY_NAME}: shutting down\r\n".encode()
    assert c.wait_closed() == b""
    assert p.wait_exit(8) == 0
    sid = p.session_id(c.local)
    close = p.wait_close(sid, timeout=1)
    assert close.get("reason") == "shutdown"


def test_reload_names_options_that_need_a_restart(scripted_mta, proxy):
    s = scripted_mta()
    p = proxy(s.port)
    p.options["max_scans"] = 7
    p.write_config()
    p.signal(signal.SIGHUP)
    warn = wait_until(lambda: [r for r in p.events("reload") if r.get("restart_needed")], what="restart_needed")[0]
    assert warn.level == "warning"
    assert warn.get("restart_needed") == "max_scans"
    # back to the running value: nothing needs a restart any more
    del p.options["max_scans"]
    p.write_config()
    p.signal(signal.SIGHUP)
    wait_until(lambda: len([r for r in p.events("reload") if reload_result(r) == "ok"]) == 2, what="second reload")
    assert len([r for r in p.events("reload") if r.get("restart_needed")]) == 1


def test_reload_with_a_new_port_rebinds_the_listener(scripted_mta, proxy):
    s = scripted_mta()
    p = proxy(s.port)
    original = p.options["port"]
    p.options["port"] = free_port()
    p.write_config()
    p.signal(signal.SIGHUP)
    ok = wait_until(lambda: [r for r in p.events("reload") if reload_result(r) == "ok"], what="reload")[0]
    assert ok.get("rebound") == "main"
    assert ok.get("listeners") == "main"
    assert not [r for r in p.events("reload") if r.get("restart_needed")]
    (stopped,) = p.events("listener_stopped")
    assert stopped.get("listener") == "main"
    wait_until(lambda: not port_listening(original), what="the old port closed")
    assert port_listening(p.options["port"])
    (l,) = [r for r in p.events("listening") if r.get("address") == f"{HOST}:{p.options['port']}"]
    assert l.get("kind") == "smtp"


def test_sighup_reopens_the_log_file_and_usr_signals_are_harmless(scripted_mta, proxy):
    s = scripted_mta()
    p = proxy(s.port)
    p.wait_event("start")
    rotated = p.log_path.with_name(p.log_path.name + ".1")
    os.rename(p.log_path, rotated)
    for sig in (signal.SIGUSR1, signal.SIGUSR2):
        p.signal(sig)
    p.signal(signal.SIGHUP)
    wait_until(lambda: p.log_path.exists() and "reload" in p.log_path.read_text(), what="reload line in the new log")
    assert p.alive()
    c = p.connect()
    assert c.greeting().code == 220
    assert c.cmd("QUIT").code == 221
    c.close()
    wait_until(lambda: " close " in p.log_path.read_text(), what="session logged in the new file")
    assert " start " in rotated.read_text()
    assert " open " not in rotated.read_text()


def test_reload_that_changes_the_mode_rebinds_the_listener(mta, proxy):
    """A new mode needs new sockets: the listener is rebound and new sessions are in the new mode."""
    p = proxy(mta.port)
    c = p.connect()
    assert c.greeting().code == 220
    p.options["mode"] = "getsockname"
    p.write_config()
    p.signal(signal.SIGHUP)
    ok = wait_until(lambda: [r for r in p.events("reload") if reload_result(r) == "ok"], what="reload")[0]
    assert ok.get("rebound") == "main"
    assert not [r for r in p.events("reload") if r.get("restart_needed")]
    # getsockname: the connection's own address is the destination, the proxy itself: a loop.
    def refused():
        n = p.connect()
        try:
            return n.greeting().code
        finally:
            n.close()
    codes = []
    wait_until(lambda: codes.append(refused()) or codes[-1] != 220, what="a session in the new mode")
    assert codes[-1] is not None and codes[-1] >= 400
    wait_until(lambda: [r for r in p.events("close") if r.get("reason") == "loop"], what="close reason=loop")
    # the session opened before the reload is still in mode fixed and reaches the MTA
    assert c.cmd("EHLO client.test").code == 250
    assert c.cmd("QUIT").code == 221
    c.close()

