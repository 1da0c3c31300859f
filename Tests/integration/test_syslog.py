"""Syslog output (issue 12): ``run --syslog`` sends one datagram per log line to a unix datagram socket
(here one the test binds, standing in for /dev/log), with ``log_facility`` and the line's level in the
priority, the ident ``smtpgate`` (or a listener's ``syslog_name``) and the pid; ``log_level`` drops what
is less severe; ``--syslog-format rfc5424``; a socket nobody listens on fails the start.

The daemon is started here with subprocess (conftest's ``proxy`` always logs to a file).
"""
import re
import signal
import socket
import subprocess
import time

from conftest import HOST, PROXY_NAME, SMTPGATE_BIN, Client, free_port


class SyslogSocket:
    """A bound unix datagram socket collecting what the daemon sends."""

    def __init__(self, path):
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.2)
        self.got = []

    def wait_for(self, pattern, timeout=10.0):
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for m in self.got:
                if rx.search(m):
                    return m
            try:
                self.got.append(self.sock.recv(65536).decode("utf-8", "replace"))
            except socket.timeout:
                pass
        raise AssertionError(f"no datagram matching {pattern!r}; got {self.got[-10:]}")

    def drain(self, seconds=0.5):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                self.got.append(self.sock.recv(65536).decode("utf-8", "replace"))
            except socket.timeout:
                pass
        return self.got

    def close(self):
        self.sock.close()


def conf(tmp_path, port, mta_port, extra=""):
    path = tmp_path / "syslog.conf"
    path.write_text(f"""proxy_name {PROXY_NAME}
control_path {tmp_path}/control.sock
mode fixed
bind_address {HOST}
port {port}
fixed_server {HOST}
fixed_server_port {mta_port}
shutdown_timeout 2
{extra}""")
    return path


def run(cfg, *args):
    return subprocess.Popen([SMTPGATE_BIN, "run", "--config", str(cfg), "--syslog", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def stop(proc):
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)


def test_lines_go_to_syslog_with_facility_level_ident_and_pid(tmp_path, mta):
    log = SyslogSocket(tmp_path / "log")
    port = free_port()
    proc = run(conf(tmp_path, port, mta.port), "--syslog-socket", log.path)
    try:
        start = log.wait_for(r" start ")
        # mail (2) * 8 + info (6) = 22; RFC 3164 as syslog(3) sends it: local time, the day space-padded
        assert re.match(rf"<22>[A-Z][a-z][a-z] [ 123]\d \d\d:\d\d:\d\d smtpgate\[{proc.pid}\]: info start ", start), start
        with Client(port) as c:
            assert c.greeting().code == 220
            assert c.cmd("EHLO client.example.test").code == 250
            local = c.local
        line = log.wait_for(rf" close session=\S+ listener=main client={re.escape(local)} ")
        assert line.startswith("<22>") and f"smtpgate[{proc.pid}]: info close " in line
        assert not any("\n" in m for m in log.got), "one line per datagram, no line end"
    finally:
        rc = stop(proc)
        log.close()
    assert rc == 0


def test_log_facility_and_log_level_are_the_configured_ones(tmp_path, mta):
    log = SyslogSocket(tmp_path / "log")
    # earlytalker_wait without earlytalker makes a warning at start
    proc = run(conf(tmp_path, free_port(), mta.port, "log_facility local3\nlog_level warning\nearlytalker_wait 2\n"),
               "--syslog-socket", log.path)
    try:
        warning = log.wait_for(r" warning config ")
        assert warning.startswith("<156>"), "local3 (19) * 8 + warning (4)"
        got = log.drain(0.5)
    finally:
        stop(proc)
        log.close()
    assert [m for m in got if " info " in m] == [], "log_level warning: no info lines (not even start)"


def test_rfc5424_and_a_listeners_syslog_name(tmp_path, mta):
    log = SyslogSocket(tmp_path / "log")
    port = free_port()
    cfg = tmp_path / "s.conf"
    cfg.write_text(f"""proxy_name {PROXY_NAME}
control_path {tmp_path}/control.sock
bind_address {HOST}
fixed_server {HOST}
fixed_server_port {mta.port}
shutdown_timeout 2
[listener in]
port {port}
mode fixed
syslog_name smtpgate-in
""")
    proc = run(cfg, "--syslog-socket", log.path, "--syslog-format", "rfc5424")
    try:
        start = log.wait_for(r" start ")
        host = socket.gethostname()
        assert re.match(rf"<22>1 \d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{{3}}Z {re.escape(host)} smtpgate {proc.pid} start - info start ",
                        start), start
        with Client(port) as c:
            assert c.greeting().code == 220
        opened = log.wait_for(r" open session=")
        assert f" smtpgate-in {proc.pid} open - info open " in opened, opened
    finally:
        stop(proc)
        log.close()


def test_a_syslog_socket_nobody_reads_fails_the_start(tmp_path, mta):
    proc = run(conf(tmp_path, free_port(), mta.port), "--syslog-socket", str(tmp_path / "nobody"))
    out, err = proc.communicate(timeout=10)
    assert proc.returncode == 1
    assert f"cannot connect to the syslog socket {tmp_path}/nobody: No such file or directory" in err.decode(), err


def test_syslog_options_are_checked(tmp_path, mta):
    cfg = conf(tmp_path, free_port(), mta.port, "log_facility mailx\n")
    r = subprocess.run([SMTPGATE_BIN, "check-config", str(cfg)], capture_output=True, text=True, timeout=10)
    assert r.returncode != 0 and "expected a syslog facility" in r.stderr, r.stderr
    r = subprocess.run([SMTPGATE_BIN, "run", "--config", str(conf(tmp_path, free_port(), mta.port)), "--syslog",
                        "--log-file", str(tmp_path / "x.log")], capture_output=True, text=True, timeout=10)
    assert r.returncode != 0 and "--syslog and --log-file exclude each other" in r.stderr, r.stderr
