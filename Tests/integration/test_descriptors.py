"""Out of descriptors: with the proxy's descriptor table exactly full, a client
that connects is accepted on the listener's spare descriptor (or on one
another event loop's refusal has just left) and told ``421 4.3.2`` instead of
waiting in silence, the event loops do not spin on the
failing accept(), the failures are logged in a rate-limited ``accept_failed``
line, and service comes back as soon as descriptors are free.  At start (and at
a reload that changes ``max_connections``) the proxy says when the open-files
limit cannot serve ``max_connections`` sessions.

The table is filled exactly by lowering the running proxy's limit (prlimit) to
what it holds plus two descriptors (client and MTA) for each further session.
"""

import datetime
import os
import resource
import signal
import subprocess
import time

from conftest import PROXY_NAME, SMTPGATE_BIN, port_listening, start, wait_until

REFUSAL = f"421 4.3.2 {PROXY_NAME}: too many open files, try again later\r\n".encode()
FILL = 10            # sessions that fill the table once the limit is lowered
CPU_WINDOW = 2.0     # seconds of wall time over which the proxy's CPU time is measured
CPU_BUDGET = 0.3     # CPU seconds the proxy may use in that window while full


def open_fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def cpu_seconds(pid):
    """utime + stime of the whole process (all threads), fields 14 and 15 of /proc/PID/stat."""
    with open(f"/proc/{pid}/stat") as f:
        after_name = f.read().rsplit(")", 1)[1].split()
    return (int(after_name[11]) + int(after_name[12])) / os.sysconf("SC_CLK_TCK")


def greeted(p):
    c = p.connect()
    r = c.greeting()
    assert r.code == 220, r
    return c


def refused(p):
    """A client of the full proxy: it gets the 421 4.3.2 reply and nothing else, then the close."""
    with p.connect() as c:
        assert c.read_line() == REFUSAL
        assert c.wait_closed() == b""


def fill_exactly(p, fill=FILL):
    """Sessions until the proxy's descriptor table is full; returns (held clients, the limit)."""
    held = [greeted(p) for _ in range(3)]
    limit = open_fds(p.pid) + 2 * fill
    resource.prlimit(p.pid, resource.RLIMIT_NOFILE, (limit, limit))
    held += [greeted(p) for _ in range(fill)]
    wait_until(lambda: open_fds(p.pid) == limit, what=lambda: f"{limit} open descriptors, not {open_fds(p.pid)}")
    return held, limit


def listening_sockets(port):
    """LISTEN entries for ``port`` in /proc/net/tcp: the proxy has one per event loop (SO_REUSEPORT)."""
    with open("/proc/net/tcp") as f:
        next(f)
        return sum(1 for line in f
                   if line.split()[3] == "0A" and int(line.split()[1].rsplit(":", 1)[1], 16) == port)


def timestamp(r):
    return datetime.datetime.strptime(r.ts, "%Y-%m-%dT%H:%M:%S.%fZ").timestamp()


def start_limited(p, nofile, timeout=10.0):
    """``Proxy.start`` under ``prlimit --nofile=N:N`` (prlimit execs the daemon, so the pid is the daemon's)."""
    cmd = ["prlimit", f"--nofile={nofile}:{nofile}", SMTPGATE_BIN, "run", "--config", str(p.config_path),
           "--log-file", str(p.log_path)]
    p.stderr_file = open(p.stderr_path, "wb")
    p.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=p.stderr_file, stderr=p.stderr_file,
                              start_new_session=True)
    wait_until(lambda: p.proc.poll() is not None or port_listening(p.port), timeout,
               what=f"smtpgate listening on port {p.port}")
    assert p.proc.poll() is None, f"smtpgate exited at start-up: {p.stderr()}"
    return p


def full_proxy(proxy, mta):
    return proxy(mta.port, max_connections=1000, max_per_host=0, timeout_idle=60)


def test_full_table_refuses_with_421_logs_once_a_second_and_does_not_spin(proxy, mta):
    p = full_proxy(proxy, mta)
    held, limit = fill_exactly(p)

    # One client waits while the CPU time is measured: the accept() that fails for it must not spin.
    waiting = p.connect()
    cpu0, t0 = cpu_seconds(p.pid), time.monotonic()
    while time.monotonic() - t0 < CPU_WINDOW:
        time.sleep(0.1)
    used = cpu_seconds(p.pid) - cpu0
    assert used < CPU_BUDGET, f"the full proxy used {used:.2f} s of CPU in {CPU_WINDOW} s"
    assert waiting.read_line() == REFUSAL
    assert waiting.wait_closed() == b""
    waiting.close()

    # A burst: every client gets the reply, and the log sums them up instead of a line each.
    burst = [p.connect() for _ in range(20)]
    for c in burst:
        assert c.read_line() == REFUSAL
        assert c.wait_closed() == b""
        c.close()
    refusals = 1 + len(burst)
    cpu1 = cpu_seconds(p.pid)
    time.sleep(0.5)
    idle = cpu_seconds(p.pid) - cpu1
    assert idle < CPU_BUDGET / 2, f"the full proxy used {idle:.2f} s of CPU in 0.5 s with nothing to do"

    def all_counted():
        lines = p.events("accept_failed")
        return lines if sum(int(r.get("refused")) for r in lines) == refusals else None

    lines = wait_until(all_counted, 5.0, what=lambda: f"{refusals} refusals in accept_failed lines: "
                                                      f"{p.events('accept_failed')}")
    assert len(lines) < refusals
    for r in lines:
        assert r.level == "warning"
        assert r.get("listener") == "main"
        assert r.get("error") == "Too many open files"
    # Some are accepted on a descriptor another loop's refusal has just left: refused without a failure.
    assert sum(int(r.get("failed")) for r in lines) >= 1
    # At most one line a second for each of the listening sockets (one per event loop).
    sockets = listening_sockets(p.port)
    assert sockets >= 1
    times = sorted(timestamp(r) for r in lines)
    for a, b in zip(times, times[sockets:]):
        assert b - a > 0.98, f"more than {sockets} accept_failed lines within a second: {lines}"
    # Nothing else about the refused clients: no session was opened for them.
    assert len(p.events("open")) == len(held)
    assert open_fds(p.pid) == limit

    # A session that ends makes room at once: the next client is served, and the table is full again.
    held.pop().close()
    wait_until(lambda: open_fds(p.pid) <= limit - 2, what="the ended session's descriptors closed")
    held.append(greeted(p))
    refused(p)

    # Once the held sessions are gone, mail flows as before.
    for c in held:
        c.close()
    c = start(p)
    assert c.cmd("MAIL FROM:<a@client.test>").code == 250
    assert c.cmd("RCPT TO:<b@dest.test>").code == 250
    assert c.cmd("DATA").code == 354
    assert c.cmd("Subject: after the shortage\r\n\r\nhello\r\n.").code == 250
    assert c.cmd("QUIT").code == 221
    (m,) = [m for m in mta.wait_messages(1) if b"after the shortage" in m.content]
    assert m.rcpt_tos == ["b@dest.test"]


def test_table_full_of_held_sessions_is_served_again_when_they_go(proxy, mta):
    """The refusals leave nothing behind: after many of them, every freed slot serves a session."""
    p = full_proxy(proxy, mta)
    held, limit = fill_exactly(p, fill=4)
    for _ in range(10):
        refused(p)
    for c in held[-4:]:
        c.close()
    wait_until(lambda: open_fds(p.pid) <= limit - 8, what="the ended sessions' descriptors closed")
    again = [greeted(p) for _ in range(4)]
    refused(p)
    for c in held[:-4] + again:
        c.close()


def test_start_warns_when_the_open_files_limit_cannot_serve_max_connections(proxy, mta):
    p = start_limited(proxy(mta.port, start=False, max_connections=500, max_per_host=0, timeout_idle=60), 64)
    (w,) = p.wait_event("descriptor_limit")
    assert w.level == "warning"
    assert w.get("max_connections") == "500"
    assert w.get("nofile") == "64"
    assert int(w.get("needed")) > 64
    fits = int(w.get("fits"))
    assert 0 < fits < 500
    assert w.line.split(" ", 3)[3].startswith(f"descriptor_limit fits={fits} max_connections=500 needed=")
    # The estimate is on the safe side: as many sessions as it says fit are served.
    held = [greeted(p) for _ in range(fits)]

    # A reload that changes max_connections says it again; one that does not, does not.
    p.options["max_connections"] = 400
    p.write_config()
    p.signal(signal.SIGHUP)
    p.wait_event("descriptor_limit", count=2)
    p.options["timeout_idle"] = 61
    p.write_config()
    p.signal(signal.SIGHUP)
    p.wait_event("reload", count=2, result="ok")
    for c in held:
        c.close()
    # A session's close line comes after anything the second reload could have written.
    c = start(p)
    assert c.cmd("QUIT").code == 221
    sid = p.session_id(c.local)
    p.wait_close(sid)
    warnings = p.events("descriptor_limit")
    assert [r.get("max_connections") for r in warnings] == ["500", "400"]
    assert warnings[1].get("nofile") == "64"


def test_no_warning_when_the_limit_serves_max_connections(proxy, mta):
    p = start_limited(proxy(mta.port, start=False, max_connections=64), 4096)
    c = start(p)
    assert c.cmd("QUIT").code == 221
    p.wait_close(p.session_id(c.local))
    assert p.events("start")
    assert p.events("descriptor_limit") == []
