"""The control socket's daemon commands (issue 12): ``smtpgate status [--json]`` with live SMTP and forwarded
sessions, ``smtpgate reload`` and ``smtpgate stop``, and what they say when no daemon answers.

The daemon is conftest's ``proxy`` with a sectioned config (an SMTP listener and a [forward] to an echo
backend); every test daemon has its own ``control_path`` (conftest), which the commands read from
``--config``.
"""
import json
import signal

from conftest import HOST, PROXY_NAME, Client, free_port, wait_until
from forwardkit import Backend, connect, echo_handler, run_cli, sectioned


def head(p):
    return f"""# written by test_status.py
proxy_name {PROXY_NAME}
pidfile {p.pidfile}
control_path {p.control_path}
bind_address {HOST}
fixed_server {HOST}
fixed_server_port {p.upstream_port}
timeout_idle 10
shutdown_timeout 3
"""


def config(p, smtp_port, fwd_port, echo_port, smtp_extra=""):
    return head(p) + f"""
[listener in]
port {smtp_port}
mode fixed
log_helo yes
{smtp_extra}
[forward web]
port {fwd_port}
mode fixed
fixed_server_port {echo_port}
"""


def cli(p, *args, timeout=15):
    r = run_cli(*args, "--config", p.config_path, timeout=timeout)
    return r.returncode, r.stdout.decode(), r.stderr.decode()


def start_pair(proxy, mta, echo):
    p = proxy(mta.port, start=False)
    smtp_port, fwd_port = free_port(), free_port()
    p.port = smtp_port
    sectioned(p, config(p, smtp_port, fwd_port, echo.port), wait_ports=[fwd_port])
    return p, smtp_port, fwd_port


def test_status_shows_the_listeners_and_every_open_session(proxy, mta):
    with Backend(echo_handler) as echo:
        p, smtp_port, fwd_port = start_pair(proxy, mta, echo)
        hostile = "<script>alert(1)</script>\x01x"
        with Client(smtp_port) as smtp:
            assert smtp.greeting().code == 220
            assert smtp.cmd(f"EHLO {hostile}").code == 250
            assert smtp.cmd("MAIL FROM:<a@example.org>").code == 250
            sid = p.session_id(smtp.local)
            fwd = connect(fwd_port)
            try:
                fwd.sendall(b"ping")
                assert fwd.recv(16) == b"ping"
                rc, out, err = cli(p, "status")
                assert rc == 0, err
                lines = out.splitlines()
                assert lines[0].startswith("smtpgate ") and f"config {p.config_path}" in lines[0], out
                assert lines[1].startswith("sessions 2, abuse control off"), out
                listeners = {l.split()[0]: l.split() for l in lines if l.startswith(("in ", "web "))}
                # Open now, then ended, refused, transactions and bytes since the start: nothing has ended yet.
                assert listeners["in"][1:] == ["smtp", f"{HOST}:{smtp_port}", "fixed", "1", "0", "0", "0", "0", "0"], out
                assert listeners["web"][1:] == ["forward", f"{HOST}:{fwd_port}", "fixed", "1", "0", "0", "0", "0", "0"], out
                rows = {l.split()[0]: l.split() for l in lines if l.split() and l.split()[0] in (sid,)}
                row = rows[sid]
                assert row[1:3] == ["in", "relay"] and row[4] == smtp.local and row[5] == f"{HOST}:{mta.port}", out
                assert row[-1] == r"<script>alert(1)</script>\x01x", "HELO as the log escapes it, one cell"
                fwd_row = next(l.split() for l in lines if l.split()[1:2] == ["web"])
                assert fwd_row[2] == "relay" and fwd_row[5] == f"{HOST}:{echo.port}", out
                assert fwd_row[7:9] == ["4", "4"], "4 bytes each way"

                rc, out, err = cli(p, "status", "--json")
                assert rc == 0, err
                doc = json.loads(out)
                assert doc["locks"] is None and doc["sessions_omitted"] == 0
                assert [(l["name"], l["kind"], l["sessions"]) for l in doc["listeners"]] == [("in", "smtp", 1), ("web", "forward", 1)]
                (s,) = [s for s in doc["sessions"] if s["id"] == sid]
                assert s["helo"] == r"<script>alert(1)</script>\x01x", "as the log shows it"
                assert s["client"] == smtp.local and s["state"] == "relay" and s["transactions"] == 1, "MAIL began one"
                assert s["bytes_in"] > 0 and s["bytes_out"] > 0 and s["age"] >= 0
            finally:
                fwd.close()
        wait_until(lambda: json.loads(cli(p, "status", "--json")[1])["sessions"] == [], what="sessions gone from status")


def test_without_log_helo_status_shows_no_helo(proxy, mta):
    with Backend(echo_handler) as echo:
        p = proxy(mta.port, start=False)
        smtp_port, fwd_port = free_port(), free_port()
        p.port = smtp_port
        sectioned(p, config(p, smtp_port, fwd_port, echo.port).replace("log_helo yes", "log_helo no"))
        with Client(smtp_port) as smtp:
            assert smtp.greeting().code == 220
            assert smtp.cmd("EHLO secret.example").code == 250
            p.session_id(smtp.local)
            rc, out, err = cli(p, "status", "--json")
            assert rc == 0, err
            assert [s["helo"] for s in json.loads(out)["sessions"]] == [None]
            assert "secret.example" not in cli(p, "status")[1]


def test_reload_through_the_control_socket_says_whether_the_file_was_taken(proxy, mta):
    with Backend(echo_handler) as echo:
        p, smtp_port, fwd_port = start_pair(proxy, mta, echo)
        p.write_config(config(p, smtp_port, fwd_port, echo.port, smtp_extra="max_connections 7\n"))
        rc, out, err = cli(p, "reload")
        assert (rc, out) == (0, "reloaded\n"), err
        (ok,) = p.wait_event("reload", result="ok")
        assert ok.get("changed") == "in:max_connections", ok
        p.write_config(config(p, smtp_port, fwd_port, echo.port, smtp_extra="bogus_option 1\n"))
        rc, out, err = cli(p, "reload")
        assert rc == 1 and out == "", out
        assert err.startswith("smtpgate: ") and "unknown option 'bogus_option'" in err, err
        (failed,) = p.wait_event("reload", result="failed")
        assert "bogus_option" in failed.get("error")
        with Client(smtp_port) as c:
            assert c.greeting().code == 220, "the running configuration stays"


def test_stop_through_the_control_socket_drains_and_exits(proxy, mta):
    with Backend(echo_handler) as echo:
        p, smtp_port, fwd_port = start_pair(proxy, mta, echo)
        rc, out, err = cli(p, "stop")
        assert (rc, out) == (0, "stopping\n"), err
        p.expect_exit = True
        assert p.wait_exit(10) == 0
        (drain,) = p.events("draining")
        assert drain.get("sessions") == "0"
        assert not p.control_path.exists(), "the socket is removed at exit"


def test_commands_without_a_daemon_fail_with_the_path(proxy, mta):
    p = proxy(mta.port, start=False)
    for cmd in ("status", "reload", "stop"):
        rc, out, err = cli(p, cmd)
        assert rc == 1 and out == "", (cmd, out)
        assert err == f"smtpgate: no daemon answers on {p.control_path} (control_path): is smtpgate running?\n", err


def test_lock_commands_say_when_abuse_control_is_off(proxy, mta):
    p = proxy(mta.port)
    rc, out, err = cli(p, "locks", "list")
    assert rc == 1 and "abuse control is off" in err, (out, err)


def test_a_second_daemon_on_the_same_control_path_is_refused_without_abuse_control(proxy, mta):
    """Every daemon has its control socket now, locks or not: a second one on the same path must not
    take it over (test_locks.py checks the same with abuse control on)."""
    p = proxy(mta.port)
    q = proxy(mta.port, start=False, control_path=str(p.control_path), port=free_port())
    r = run_cli("run", "--config", q.config_path, timeout=20)
    assert r.returncode == 1 and b"another smtpgate answers on it" in r.stderr, r.stderr
    rc, out, err = cli(p, "status")
    assert rc == 0 and out.startswith("smtpgate "), "the first keeps its socket"


# --------------------------------------------------------------------------
# the state file: SIGUSR1, as smtp-gated
# --------------------------------------------------------------------------

def test_sigusr1_writes_the_statefile_with_every_type_and_its_mode(proxy, mta, tmp_path):
    state = tmp_path / "state"
    p = proxy(mta.port, statefile=str(state), statefile_type="human,flat,slots", statefile_perm="0640", log_helo="yes")
    with Client(p.port) as c:
        assert c.greeting().code == 220
        assert c.cmd("EHLO tab\there.example").code == 250
        sid = p.session_id(c.local)
        p.signal(signal.SIGUSR1)
        (line,) = p.wait_event("statefile")
        assert line.get("path") == str(state) and line.get("sessions") == "1", line
        assert state.stat().st_mode & 0o777 == 0o640
        text = state.read_text()
        assert not (tmp_path / "state.tmp").exists()
    human = text.split("\n\n", 1)[0]
    assert human.startswith("smtpgate ") and "sessions 1, abuse control off" in human, text
    (daemon,) = [l for l in text.splitlines() if l.startswith("daemon ")]
    assert f"pid={p.proc.pid}" in daemon.split() and "sessions=1" in daemon.split(), daemon
    (session,) = [l for l in text.splitlines() if l.startswith("session ")]
    fields = dict(f.split("=", 1) for f in session.split()[1:])
    assert (fields["id"], fields["listener"], fields["state"], fields["client"]) == (sid, "main", "relay", c.local), session
    assert fields["helo"] == r"tab\x09here.example", "one word: the tab is escaped"
    assert any(l.startswith(sid + " ") and " main " in l for l in text.splitlines()), "the slots table has the session"


def test_the_default_statefile_types_are_human_and_slots(proxy, mta, tmp_path):
    state = tmp_path / "state"
    p = proxy(mta.port, statefile=str(state))
    p.signal(signal.SIGUSR1)
    p.wait_event("statefile")
    text = state.read_text()
    assert text.startswith("smtpgate ") and "LISTENER" in text
    assert "daemon version=" not in text, "flat is not asked for"
    assert state.stat().st_mode & 0o777 == 0o660


def test_an_unwritable_statefile_is_a_warning_and_the_daemon_goes_on(proxy, mta, tmp_path):
    p = proxy(mta.port, statefile=str(tmp_path / "missing" / "state"))
    p.signal(signal.SIGUSR1)
    (w,) = p.wait_event("statefile")
    assert w.level == "warning" and "No such file or directory" in w.get("error"), w
    with Client(p.port) as c:
        assert c.greeting().code == 220


def test_check_config_shows_and_checks_the_statefile_options(tmp_path):
    cfg = tmp_path / "s.conf"
    cfg.write_text("mode fixed\nfixed_server 127.0.0.1\nstatefile_perm 640\n")
    r = run_cli("check-config", cfg)
    out = r.stdout.decode()
    assert r.returncode == 0, r.stderr
    assert "statefile /run/smtpgate/state\n" in out and "statefile_type human,slots\n" in out and "statefile_perm 0640\n" in out
    for bad, message in [("statefile_type fancy", "expected human, flat or slots (a comma list), got 'fancy'"),
                         ("statefile_perm 0999", "expected an octal file mode such as 0660, got '0999'"),
                         ("statefile relative/state", "expected an absolute path, got 'relative/state'")]:
        cfg.write_text(f"mode fixed\nfixed_server 127.0.0.1\n{bad}\n")
        r = run_cli("check-config", cfg)
        assert r.returncode != 0 and message in r.stderr.decode(), (bad, r.stderr)
