"""Helpers for the multi-listener and [forward] tests (test_listeners.py, test_forward_tcp.py).

Backends are thread-per-connection TCP servers on 127.0.0.1; every socket has a timeout and every
thread is joined with a bound on ``stop()``.  ``SectionedProxy`` wraps conftest's ``proxy`` factory for
a config text with ``[listener]``/``[forward]`` sections (the factory's own option list is single-listener).
"""
import hashlib
import random
import socket
import subprocess
import threading
import time

from conftest import HOST, IO_TIMEOUT, SMTPGATE_BIN, claim_port, close_quietly, port_listening, wait_until


def free_port_range(n, lo=20000, hi=60000, tries=200):
    """A base port such that base..base+n-1 were all bindable on 127.0.0.1 a moment ago."""
    rnd = random.Random()
    for _ in range(tries):
        base = rnd.randrange(lo, hi - n)
        socks = []
        try:
            for p in range(base, base + n):
                s = socket.socket()
                socks.append(s)
                s.bind((HOST, p))
            if not all(claim_port(p) for p in range(base, base + n)):
                continue
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise AssertionError(f"no {n} consecutive free ports found")


class Backend:
    """TCP server(s) on 127.0.0.1.  ``handler(sock, index)`` serves one connection; ``index`` is the position
    of the listening port in ``ports`` (for port ranges).  Records every accepted peer."""

    def __init__(self, handler, ports=None, count=1):
        self.handler = handler
        self.stopped = threading.Event()
        self.lsocks = []
        self.conns = []
        self.peers = []          # (index, (ip, port))
        self.errors = []
        self.threads = []
        self.lock = threading.Lock()
        for p in (ports if ports is not None else [0] * count):
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((HOST, p))
            s.listen(64)
            s.settimeout(0.1)
            self.lsocks.append(s)
        self.ports = [s.getsockname()[1] for s in self.lsocks]
        self.port = self.ports[0]
        for i, s in enumerate(self.lsocks):
            t = threading.Thread(target=self._accept, args=(s, i), daemon=True)
            t.start()
            self.threads.append(t)

    def _accept(self, ls, index):
        while not self.stopped.is_set():
            try:
                c, peer = ls.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            c.settimeout(IO_TIMEOUT)
            with self.lock:
                self.conns.append(c)
                self.peers.append((index, peer))
            t = threading.Thread(target=self._serve, args=(c, index), daemon=True)
            t.start()
            self.threads.append(t)

    def _serve(self, c, index):
        try:
            self.handler(c, index)
        except (OSError, socket.timeout) as e:
            if not self.stopped.is_set():
                self.errors.append(e)
        finally:
            close_quietly(c)

    def stop(self):
        self.stopped.set()
        for s in self.lsocks + list(self.conns):
            close_quietly(s)
        for t in list(self.threads):
            t.join(IO_TIMEOUT)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def recv_all(sock, limit=64 << 20):
    """Reads until EOF (bounded by the socket's timeout per read and by ``limit`` bytes)."""
    buf = bytearray()
    while len(buf) < limit:
        d = sock.recv(1 << 16)
        if not d:
            break
        buf += d
    return bytes(buf)


def echo_handler(c, index):
    """Echoes every chunk at once, until the client's EOF."""
    while True:
        d = c.recv(1 << 16)
        if not d:
            return
        c.sendall(d)


def tagged_echo_handler(c, index):
    """Reads to EOF, then answers ``backend<index>:`` + what it read, and closes."""
    data = recv_all(c)
    c.sendall(f"backend{index}:".encode() + data)


def hold_handler(c, index):
    """Keeps the connection open, reading and discarding, until the client closes (or the stop)."""
    while True:
        try:
            if not c.recv(1 << 16):
                return
        except socket.timeout:
            return


def connect(port, source=HOST, timeout=IO_TIMEOUT):
    return socket.create_connection((HOST, port), timeout=timeout, source_address=(source, 0))


def exchange(port, payload, source=HOST, timeout=IO_TIMEOUT):
    """Connects from ``source``, sends ``payload``, half-closes, reads until EOF.  Returns
    ``(bytes read, client "ip:port")``.  A refused client may see a reset instead of EOF: its bytes were
    unread; that counts as EOF with nothing read."""
    c = connect(port, source, timeout)
    local = "%s:%d" % c.getsockname()[:2]
    got = bytearray()
    try:
        c.sendall(payload)
        c.shutdown(socket.SHUT_WR)
        while True:
            d = c.recv(1 << 16)
            if not d:
                break
            got += d
    except (ConnectionResetError, BrokenPipeError):
        pass
    finally:
        c.close()
    return bytes(got), local


def echo_roundtrip(port, payload, source=HOST, timeout=5.0):
    """Sends ``payload`` to an echoing peer and reads back ``len(payload)`` bytes (or less if the peer
    closes first; a reset counts as a close).  Does not rely on half-close."""
    c = connect(port, source, timeout)
    local = "%s:%d" % c.getsockname()[:2]
    got = bytearray()
    deadline = time.monotonic() + timeout
    try:
        c.sendall(payload)
        while len(got) < len(payload) and time.monotonic() < deadline:
            d = c.recv(1 << 16)
            if not d:
                break
            got += d
    except (ConnectionResetError, BrokenPipeError, socket.timeout):
        pass
    finally:
        c.close()
    return bytes(got), local


def sha(b):
    return hashlib.sha256(b).hexdigest()


def run_cli(*args, timeout=10):
    return subprocess.run([SMTPGATE_BIN, *map(str, args)], capture_output=True, timeout=timeout)


def sectioned(p, text, wait_ports=()):
    """Writes ``text`` as proxy ``p``'s config and starts it.  ``p.port`` must be one of the config's
    listening ports (Proxy.start waits for it); ``wait_ports`` are waited for too."""
    p.write_config(text)
    p.start()
    for port in wait_ports:
        wait_until(lambda: port_listening(port), what=f"port {port} listening")
    return p


def forward_lines(p, **match):
    return p.events("forward", **match)


def wait_forward(p, timeout=5.0, count=1, **match):
    return p.wait_event("forward", timeout, count=count, **match)
