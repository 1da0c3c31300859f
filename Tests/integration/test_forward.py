"""Several listeners in one daemon and plain TCP forwards (issue 11), on loopback.

One process runs the global SMTP listener (``main``), a second SMTP listener with another policy and a
``[forward]`` to a byte-counting echo server: replies and bytes each side sees, the ``forward`` log line
with rinetd's result names, rinetd's rule order, and SIGHUP adding and removing listeners.
"""
import hashlib
import os
import signal
import socket
import threading

from conftest import HOST, IO_TIMEOUT, free_port, port_listening, wait_until


class EchoServer:
    """Answers every connection with what it read, prefixed by 'echo:', after the client's EOF."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((HOST, 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.peers = []
        self.stopped = threading.Event()
        threading.Thread(target=self.run, daemon=True).start()

    def run(self):
        while not self.stopped.is_set():
            try:
                c, peer = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.peers.append(peer)
            threading.Thread(target=self.serve, args=(c,), daemon=True).start()

    def serve(self, c):
        c.settimeout(IO_TIMEOUT)
        data = bytearray()
        while True:
            d = c.recv(1 << 16)
            if not d:
                break
            data += d
        c.sendall(b"echo:" + bytes(data))
        c.close()

    def stop(self):
        self.stopped.set()
        self.sock.close()


def exchange(port, payload, source=HOST):
    """Sends PAYLOAD, half-closes, reads until EOF (a refused client may see a reset: its bytes were unread)."""
    c = socket.create_connection((HOST, port), timeout=IO_TIMEOUT, source_address=(source, 0))
    got = bytearray()
    try:
        c.sendall(payload)
        c.shutdown(socket.SHUT_WR)
        while True:
            d = c.recv(1 << 16)
            if not d:
                break
            got += d
    except OSError:  # reset, broken pipe, or not connected any more: the refusal closed it
        pass
    c.close()
    return bytes(got)


def config(p, out_port, fwd_port, echo_port, extra_forward=""):
    return f"""# two SMTP listeners and a forward
proxy_name testgate
control_path {p.control_path}
mode fixed
bind_address {HOST}
port {p.port}
fixed_server {HOST}
fixed_server_port {p.upstream_port}
timeout_idle 10
shutdown_timeout 5
deny 127.0.0.3

# with [listener] sections the global options are only defaults: main is a section too
[listener main]

[listener out]
port {out_port}
client_restrictions reject
syslog_name smtpgate-out

[forward echo]
bind_address {HOST}
port {fwd_port}
fixed_server {HOST}
fixed_server_port {echo_port}
deny 127.0.0.2
{extra_forward}
"""


def smtp_rcpt(port, rcpt="user@example.test"):
    c = socket.create_connection((HOST, port), timeout=IO_TIMEOUT)
    f = c.makefile("rb")

    def reply():
        while True:
            line = f.readline()
            if line[3:4] != b"-":
                return int(line[:3])

    codes = [reply()]
    for cmd in (b"EHLO client.test", b"MAIL FROM:<a@example.test>", b"RCPT TO:<" + rcpt.encode() + b">", b"QUIT"):
        c.sendall(cmd + b"\r\n")
        codes.append(reply())
    c.close()
    return codes


def test_two_listeners_with_their_own_policy_and_a_forward_in_one_process(mta, proxy):
    echo = EchoServer()
    try:
        p = proxy(mta.port, start=False)
        out_port, fwd_port = free_port(), free_port()
        p.write_config(config(p, out_port, fwd_port, echo.port))
        p.start()
        wait_until(lambda: port_listening(out_port) and port_listening(fwd_port), what="every listener")
        (st,) = p.wait_event("start")
        assert st.get("listeners") == "main,out,echo"
        kinds = {r.get("listener"): r.get("kind") for r in p.events("listening")}
        assert kinds == {"main": "smtp", "out": "smtp", "echo": "forward"}

        assert smtp_rcpt(p.port) == [220, 250, 250, 250, 221]
        codes = smtp_rcpt(out_port)
        assert codes[:3] == [220, 250, 250] and codes[3] >= 500, codes

        payload = os.urandom(1 << 20)
        got = exchange(fwd_port, payload)
        assert hashlib.sha256(got).hexdigest() == hashlib.sha256(b"echo:" + payload).hexdigest()
        (fw,) = wait_until(lambda: p.events("forward"), what="forward line")
        assert fw.get("listener") == "echo"
        assert fw.get("dest") == f"{HOST}:{echo.port}"
        assert fw.get("bytes_in") == str(len(payload)) and fw.get("bytes_out") == str(len(payload) + 5)
        assert fw.get("result") in ("done-remote-closed", "done-local-closed")

        opens = {r.get("listener") for r in p.events("open")}
        assert opens == {"main", "out"}
        # syslog_name names the out listener's lines
        text = p.log_text()
        assert any(line.split(" ", 2)[1].startswith("smtpgate-out[") for line in text.splitlines() if " listener=out " in line)
    finally:
        echo.stop()


def test_forward_rules_refuse_in_rinetds_order_and_say_which_rule(mta, proxy):
    echo = EchoServer()
    try:
        p = proxy(mta.port, start=False)
        out_port, fwd_port = free_port(), free_port()
        p.write_config(config(p, out_port, fwd_port, echo.port))
        p.start()
        wait_until(lambda: port_listening(fwd_port), what="forward")
        assert exchange(fwd_port, b"x", source="127.0.0.2") == b""
        assert exchange(fwd_port, b"x", source="127.0.0.3") == b""
        assert exchange(fwd_port, b"hi", source="127.0.0.4") == b"echo:hi"
        lines = wait_until(lambda: len(p.events("forward")) == 3 and p.events("forward"), what="three lines")
        by_client = {r.get("client").split(":")[0]: r for r in lines}
        assert by_client["127.0.0.2"].get("result") == "denied"
        assert by_client["127.0.0.2"].get("rule") == "forward" and by_client["127.0.0.2"].get("pattern") == "127.0.0.2"
        assert by_client["127.0.0.3"].get("result") == "denied" and by_client["127.0.0.3"].get("rule") == "global"
        assert by_client["127.0.0.4"].get("result").startswith("done-")
        # the refused never reached the echo server
        assert [peer[0] for peer in echo.peers] == [HOST]
    finally:
        echo.stop()


def test_sighup_adds_and_removes_listeners_while_a_session_stays_open(mta, proxy):
    echo = EchoServer()
    try:
        p = proxy(mta.port, start=False)
        out_port, fwd_port, fwd2_port = free_port(), free_port(), free_port()
        p.write_config(config(p, out_port, fwd_port, echo.port))
        p.start()
        wait_until(lambda: port_listening(out_port), what="out")
        c = p.connect()
        assert c.greeting().code == 220
        text = config(p, out_port, fwd_port, echo.port).split("[listener out]")[0] + f"""
[forward echo2]
bind_address {HOST}
port {fwd2_port}
fixed_server {HOST}
fixed_server_port {echo.port}
"""
        p.write_config(text)
        p.signal(signal.SIGHUP)
        ok = wait_until(lambda: [r for r in p.events("reload") if r.get("result") == "ok"], what="reload")[0]
        assert ok.get("added") == "echo2"
        assert set(ok.get("removed").split(",")) == {"out", "echo"}
        wait_until(lambda: not port_listening(out_port) and not port_listening(fwd_port), what="removed ports closed")
        assert exchange(fwd2_port, b"new") == b"echo:new"
        # the session opened before the reload goes on
        assert c.cmd("EHLO client.test").code == 250
        assert c.cmd("QUIT").code == 221
        c.close()
        # a port another process holds: the reload fails and nothing changes
        busy = socket.socket()
        busy.bind((HOST, 0))
        busy.listen(1)
        p.write_config(text + f"\n[forward taken]\nbind_address {HOST}\nport {busy.getsockname()[1]}\nfixed_server {HOST}\nfixed_server_port {echo.port}\n")
        p.signal(signal.SIGHUP)
        failed = wait_until(lambda: [r for r in p.events("reload") if r.get("result") == "failed"], what="failed reload")[0]
        assert "taken" in failed.get("error") and "Address already in use" in failed.get("error")
        assert exchange(fwd2_port, b"still") == b"echo:still"
        busy.close()
    finally:
        echo.stop()


def test_check_config_and_import_rinetd(tmp_path):
    from conftest import SMTPGATE_BIN
    import subprocess
    conf = tmp_path / "rinetd.conf"
    conf.write_text("allow 10.0.0.*\n127.0.0.1 8443 127.0.0.1 443\nallow *\n")
    r = subprocess.run([SMTPGATE_BIN, "import-rinetd", str(conf)], capture_output=True, timeout=10)
    assert r.returncode == 0, r.stderr
    out = tmp_path / "smtpgate.conf"
    out.write_bytes(r.stdout)
    assert b"[forward rinetd-2]\nbind_address 127.0.0.1\nport 8443\nmode fixed\nfixed_server 127.0.0.1\nfixed_server_port 443\nallow *\n" in r.stdout
    c = subprocess.run([SMTPGATE_BIN, "check-config", str(out)], capture_output=True, timeout=10)
    assert c.returncode == 0, c.stderr
    assert b"[forward rinetd-2]" in c.stdout and b"port 8443" in c.stdout
    assert b"warning: forward rinetd-2: allow * admits only what the global allow rules admit" in c.stderr
    conf.write_text("127.0.0.1 53/udp 127.0.0.1 53\n")
    r = subprocess.run([SMTPGATE_BIN, "import-rinetd", str(conf)], capture_output=True, timeout=10)
    assert r.returncode == 1 and r.stderr.startswith(f"{conf}:1: ".encode())
    bad = tmp_path / "bad.conf"
    bad.write_text("mode fixed\nfixed_server 127.0.0.1\n[listener a]\nset_user nobody\n")
    r = subprocess.run([SMTPGATE_BIN, "check-config", str(bad)], capture_output=True, timeout=10)
    assert r.returncode == 1
    assert r.stderr.decode().strip() == f"{bad}:4: option 'set_user' is the daemon's: set it before the first section"
