#!/usr/bin/env python3
"""Small helpers for bench/run.sh (stdlib only).

  util.py free-ports N              print N distinct free TCP ports on 127.0.0.1
  util.py wait-listen PORT PID SECS wait until something LISTENs on 127.0.0.1:PORT
                                    (read from /proc/net/tcp, so no connection is
                                    made), failing early if PID exits.
  util.py wait-clamd SOCKET PID SECS wait until clamd answers PING with PONG on its
                                    unix socket, failing early if PID exits.
"""
import json
import os
import socket
import sys
import time


def free_ports(n):
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def listening(port):
    want = "%04X" % port
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(path) as f:
                next(f, None)
                for line in f:
                    fields = line.split()
                    if len(fields) < 4 or fields[3] != "0A":  # 0A = LISTEN
                        continue
                    if fields[1].rsplit(":", 1)[1] == want:
                        return True
        except FileNotFoundError:
            pass
    return False


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            # state is the field after the parenthesised command name
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def wait_ready(ready, pid, secs, what):
    """0 once ready() holds, 1 if process PID exits first or SECS pass (said on stderr)."""
    deadline = time.monotonic() + secs
    while time.monotonic() < deadline:
        if ready():
            return 0
        if not alive(pid):
            print("process %d exited before %s" % (pid, what), file=sys.stderr)
            return 1
        time.sleep(0.05)
    print("not %s after %.0fs" % (what, secs), file=sys.stderr)
    return 1


def wait_listen(port, pid, secs):
    return wait_ready(lambda: listening(port), pid, secs, "listening on 127.0.0.1:%d" % port)


def clamd_ping(path, timeout=2.0):
    """True when clamd answers zPING with PONG on the unix socket PATH."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(path)
            s.sendall(b"zPING\0")
            reply = b""
            while len(reply) < 64 and not reply.endswith(b"\0"):
                chunk = s.recv(64)
                if not chunk:
                    break
                reply += chunk
        return reply.rstrip(b"\0") == b"PONG"
    except OSError:
        return False


def wait_clamd(path, pid, secs):
    # clamd creates its socket only after loading the database; ping until it answers
    return wait_ready(lambda: os.path.exists(path) and clamd_ping(path), pid, secs,
                      "clamd answering PING on %s" % path)


class Terminated(Exception):
    """Raised by on_term: a bench driver stops cleanly on SIGTERM/SIGINT."""


def log_events(path, watched):
    """({event: count}, [up to 20 lines of the `watched` events]) of an smtpgate --log-file (text lines
    'DATE smtpgate[PID]: LEVEL EVENT ...' or JSON)."""
    events, lines = {}, []
    try:
        with open(path, "rb") as f:
            for raw in f:
                parts = raw.split(None, 4)
                if len(parts) >= 4 and parts[1].startswith(b"smtpgate["):
                    ev = parts[3].decode("ascii", "replace")
                elif raw.lstrip().startswith(b"{"):
                    try:
                        ev = str(json.loads(raw).get("event"))
                    except ValueError:
                        continue
                else:
                    continue
                events[ev] = events.get(ev, 0) + 1
                if ev in watched and len(lines) < 20:
                    lines.append(raw.decode("utf-8", "replace").rstrip())
    except OSError:
        pass
    return events, lines


def on_term(signum, frame):
    raise Terminated("signal %d" % signum)


def log(msg):
    print("[bench] " + msg, file=sys.stderr, flush=True)


def proc_status(pid):
    """VmRSS/VmHWM (kB) and Threads of a process; {"error": ...} when it cannot be read."""
    out = {}
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                key, _, val = line.partition(":")
                if key in ("VmRSS", "VmHWM", "Threads"):
                    out[key] = int(val.split()[0])
    except OSError as e:
        out["error"] = str(e)
    return out


def main(argv):
    if len(argv) >= 2 and argv[1] == "free-ports":
        print(" ".join(str(p) for p in free_ports(int(argv[2]))))
        return 0
    if len(argv) == 5 and argv[1] == "wait-listen":
        return wait_listen(int(argv[2]), int(argv[3]), float(argv[4]))
    if len(argv) == 5 and argv[1] == "wait-clamd":
        return wait_clamd(argv[2], int(argv[3]), float(argv[4]))
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
