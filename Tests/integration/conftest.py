"""Loopback fixtures for the SMTPGate integration tests.

Everything binds to 127.0.0.1 on kernel-chosen ports, every socket operation
has a timeout (at most IO_TIMEOUT seconds) and every wait is a poll against a
deadline.  Fixtures:

* ``mta``       -- a real aiosmtpd MTA that stores every message (envelope and
                   the exact DATA bytes) and every raw byte each connection sent.
* ``scripted_mta`` -- factory for a small thread-based SMTP server used for
                   faults (never greets, slow replies, closes mid-DATA, closes
                   on a verb) and for extensions aiosmtpd lacks (STARTTLS that
                   turns into a raw echo, CHUNKING/BINARYMIME/XEXCH50,
                   ENHANCEDSTATUSCODES, both AUTH forms); records every byte.
* ``closed_port`` -- a port nothing listens on.
* ``proxy``     -- factory: writes a config file, starts
                   ``smtpgate run --config FILE --log-file LOG [--log-format json]``,
                   waits for the listening socket (without connecting, so no
                   session is logged), stops it with SIGTERM on teardown and
                   parses the log (text ``key=value`` with ``\\xHH`` escapes, or JSON).
"""

pytest_plugins = ["scanners"]   # clamd, spamd and fake scanner fixtures (scanners.py)

import asyncio
import base64
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time

import pytest
from aiosmtpd.smtp import SMTP as AioSMTP, AuthResult, LoginPassword

SMTPGATE_BIN = os.environ.get("SMTPGATE_BIN", "/work/main/.build/debug/smtpgate")
HOST = "127.0.0.1"
IO_TIMEOUT = 10.0          # hard upper bound for any single socket operation
REPLY_TIMEOUT = 5.0        # default wait for an SMTP reply
PROXY_NAME = "testgate"
CRLF = b"\r\n"

# Test accounts known to the aiosmtpd MTA.  The second one is made of the
# base64 strings "QUIT" and "DATA": a proxy that treats SASL continuation
# lines as commands cannot authenticate it.
AUTH_USER = "testuser"
AUTH_PASS = "testpass"
SASL_QUIT_USER = base64.b64decode("QUIT")
SASL_DATA_PASS = base64.b64decode("DATA")
USERS = {AUTH_USER.encode(): AUTH_PASS.encode(), SASL_QUIT_USER: SASL_DATA_PASS}


# --------------------------------------------------------------------------
# generic helpers
# --------------------------------------------------------------------------

def has_ipv6_loopback():
    """Whether ::1 can be bound here (some CI hosts have no IPv6)."""
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


# Ports this test process has handed out.  The kernel may give the same free port to two bind(0) calls in a
# row once the first socket is closed, and a test that asks for two ports before binding either would then
# configure two listeners on one port; a port is therefore handed out once per process.
_HANDED_OUT_PORTS = set()


def claim_port(port):
    """Record ``port`` as handed out; False if it was already."""
    if port in _HANDED_OUT_PORTS:
        return False
    _HANDED_OUT_PORTS.add(port)
    return True


def free_port(tries=100):
    """A TCP port on 127.0.0.1 that was free a moment ago (nothing listens) and that no earlier call returned."""
    for _ in range(tries):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((HOST, 0))
            port = s.getsockname()[1]
        if claim_port(port):
            return port
    raise AssertionError(f"no unused free port in {tries} tries")


def wait_until(pred, timeout=5.0, interval=0.02, what="condition"):
    """Poll ``pred`` until it returns a truthy value or the deadline passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() >= deadline:
            if callable(what):
                what = what()
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def listening_ports():
    """Ports in LISTEN state according to /proc/net/tcp{,6} (no connection made)."""
    ports = set()
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(name) as f:
                next(f)
                for line in f:
                    parts = line.split()
                    if len(parts) > 3 and parts[3] == "0A":
                        ports.add(int(parts[1].rsplit(":", 1)[1], 16))
        except OSError:
            pass
    return ports


def port_listening(port):
    return port in listening_ports()


# --------------------------------------------------------------------------
# raw SMTP client
# --------------------------------------------------------------------------

class ConnectionClosed(Exception):
    pass


class Reply:
    def __init__(self, lines, raw):
        self.lines = lines                    # str (latin-1), without CRLF
        self.raw = raw                        # exact bytes incl. CRLFs
        self.code = int(lines[-1][:3])

    @property
    def text(self):
        return self.lines[-1]

    def __repr__(self):
        return f"Reply({self.raw!r})"


class Client:
    """A blocking SMTP client socket with bounded reads and byte accounting."""

    def __init__(self, port, host=HOST, source=None, timeout=IO_TIMEOUT):
        src = (source, 0) if source else None
        self.sock = socket.create_connection((host, port), timeout=min(timeout, IO_TIMEOUT),
                                             source_address=src)
        self.sock.settimeout(min(timeout, IO_TIMEOUT))
        h, p = self.sock.getsockname()[:2]
        self.local = f"{h}:{p}"            # "ip:port" as the proxy logs client=
        self.local_port = p
        self.buf = b""
        self.sent = 0
        self.received = 0
        self.eof = False

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)
        self.sent += len(data)

    def _fill(self, deadline):
        if self.eof:
            raise ConnectionClosed("connection closed by peer")
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise socket.timeout("deadline passed")
        self.sock.settimeout(min(remaining, IO_TIMEOUT))
        try:
            chunk = self.sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            chunk = b""
        if not chunk:
            self.eof = True
            raise ConnectionClosed(f"connection closed by peer (unparsed: {self.buf!r})")
        self.received += len(chunk)
        self.buf += chunk

    def read_exact(self, n, timeout=REPLY_TIMEOUT):
        deadline = time.monotonic() + timeout
        while len(self.buf) < n:
            self._fill(deadline)
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_line(self, timeout=REPLY_TIMEOUT):
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            self._fill(deadline)
        i = self.buf.index(b"\n") + 1
        line, self.buf = self.buf[:i], self.buf[i:]
        return line

    def read_reply(self, timeout=REPLY_TIMEOUT):
        deadline = time.monotonic() + timeout
        lines, raw = [], b""
        while True:
            line = self.read_line(max(0.0, deadline - time.monotonic()))
            raw += line
            text = line.rstrip(b"\r\n").decode("latin-1")
            if not re.match(r"^\d{3}([ -]|$)", text):
                raise AssertionError(f"malformed reply line {line!r} (so far {raw!r})")
            lines.append(text)
            if text[3:4] != "-":
                return Reply(lines, raw)

    def read_replies(self, n, timeout=REPLY_TIMEOUT):
        deadline = time.monotonic() + timeout
        return [self.read_reply(max(0.0, deadline - time.monotonic())) for _ in range(n)]

    def cmd(self, line, timeout=REPLY_TIMEOUT):
        if isinstance(line, str):
            line = line.encode()
        self.send(line + CRLF)
        return self.read_reply(timeout)

    def greeting(self, timeout=REPLY_TIMEOUT):
        return self.read_reply(timeout)

    def wait_closed(self, timeout=REPLY_TIMEOUT):
        """Read until the peer closes; returns the bytes that arrived meanwhile."""
        deadline = time.monotonic() + timeout
        start = len(self.buf)
        try:
            while True:
                self._fill(deadline)
        except ConnectionClosed:
            data, self.buf = self.buf, b""
            return data
        except socket.timeout:
            raise AssertionError(f"peer did not close within {timeout}s (got {self.buf[start:]!r})")

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# --------------------------------------------------------------------------
# aiosmtpd MTA
# --------------------------------------------------------------------------

class StoredMessage:
    def __init__(self, envelope, session, conn):
        self.mail_from = envelope.mail_from
        self.mail_options = list(envelope.mail_options)
        self.rcpt_tos = list(envelope.rcpt_tos)
        self.content = bytes(envelope.original_content)    # DATA content, dot-unstuffed
        self.helo = session.host_name
        self.auth = session.auth_data           # LoginPassword or None
        self.peer = session.peer
        self.conn = conn

    def __repr__(self):
        return (f"StoredMessage(from={self.mail_from!r}, rcpt={self.rcpt_tos!r}, "
                f"opts={self.mail_options!r}, {len(self.content)} bytes)")


class MTAConn:
    """Everything one connection sent to an MTA fixture."""

    def __init__(self, peer=None):
        self.peer = peer
        self.raw = bytearray()
        self.closed = threading.Event()

    def __repr__(self):
        return f"MTAConn(peer={self.peer}, raw={bytes(self.raw[:200])!r}...)"


class _RecordingSMTP(AioSMTP):
    line_length_limit = 1 << 20        # 1 MiB lines (70 KB lines must pass)
    command_size_limit = 4096

    def __init__(self, mta, *args, **kwargs):
        self._rec = MTAConn()
        with mta.lock:
            mta.conns.append(self._rec)
        super().__init__(*args, **kwargs)

    def connection_made(self, transport):
        if self._rec.peer is None:
            self._rec.peer = transport.get_extra_info("peername")
        super().connection_made(transport)

    def data_received(self, data):
        self._rec.raw += data
        super().data_received(data)

    def connection_lost(self, exc):
        self._rec.closed.set()
        super().connection_lost(exc)


class _MTAHandler:
    def __init__(self, mta):
        self.mta = mta

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        responses.insert(1, "250-PIPELINING")
        return responses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if "reject" in address.lower():
            return f"550 5.1.1 <{address}>: recipient rejected"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        conn = getattr(server, "_rec", None)
        if b"REJECT-THIS-MESSAGE" in envelope.original_content:
            return "554 5.7.1 message content rejected"
        with self.mta.lock:
            self.mta.messages.append(StoredMessage(envelope, session, conn))
            n = len(self.mta.messages)
        return f"250 OK queued as Q{n}"


def _authenticator(server, session, envelope, mechanism, auth_data):
    ok = isinstance(auth_data, LoginPassword) and USERS.get(bytes(auth_data.login)) == bytes(auth_data.password)
    return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)


class AioMTA:
    hostname = "mta.aiosmtpd.test"

    def __init__(self):
        self.lock = threading.Lock()
        self.messages = []
        self.conns = []
        self.loop = None
        self.server = None
        self.port = None
        self._thread = None

    def _factory(self):
        return _RecordingSMTP(
            self, _MTAHandler(self),
            data_size_limit=64 * 1024 * 1024,
            enable_SMTPUTF8=True,
            decode_data=False,
            hostname=self.hostname,
            auth_require_tls=False,
            authenticator=_authenticator,
            timeout=30,
            loop=self.loop,
        )

    def start(self):
        ready = threading.Event()
        err = []

        def run():
            self.loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self.loop)
            try:
                self.server = self.loop.run_until_complete(
                    self.loop.create_server(self._factory, HOST, 0))
                self.port = self.server.sockets[0].getsockname()[1]
            except Exception as e:   # pragma: no cover
                err.append(e)
                ready.set()
                return
            ready.set()
            self.loop.run_forever()
            # shutdown
            self.server.close()
            self.loop.run_until_complete(self.server.wait_closed())
            pending = [t for t in asyncio.all_tasks(self.loop) if not t.done()]
            for t in pending:
                t.cancel()
            if pending:
                self.loop.run_until_complete(asyncio.wait(pending, timeout=2))
            self.loop.close()

        self._thread = threading.Thread(target=run, name="aiosmtpd-mta", daemon=True)
        self._thread.start()
        if not ready.wait(IO_TIMEOUT) or err:
            raise RuntimeError(f"aiosmtpd MTA failed to start: {err}")
        return self

    def stop(self):
        if self.loop and self.loop.is_running():
            self.loop.call_soon_threadsafe(self.loop.stop)
        if self._thread:
            self._thread.join(IO_TIMEOUT)

    def wait_messages(self, n, timeout=REPLY_TIMEOUT):
        wait_until(lambda: len(self.messages) >= n, timeout, what=f"{n} stored message(s)")
        return list(self.messages)

    def raw_all(self):
        with self.lock:
            return b"".join(bytes(c.raw) for c in self.conns)


# --------------------------------------------------------------------------
# scripted MTA (faults and extensions)
# --------------------------------------------------------------------------

DEFAULT_EHLO = [
    "mta.scripted.test Hello",
    "PIPELINING",
    "SIZE 10240000",
    "STARTTLS",
    "CHUNKING",
    "BINARYMIME",
    "XEXCH50",
    "8BITMIME",
    "ENHANCEDSTATUSCODES",
    "AUTH PLAIN LOGIN",
    "AUTH=PLAIN LOGIN",
    "DSN",
]


class ThreadedServer:
    """A TCP server on 127.0.0.1 (kernel-chosen port) with a thread per connection. ``stop()`` closes
    every connection and joins every thread, each wait bounded. Subclasses define ``_serve(sock, *args)``
    and may override ``_accepted(sock, peer)``, called under ``self.lock``, to record the connection and
    return the extra arguments for ``_serve``."""

    name = "test-server"

    def __init__(self, backlog=64):
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = []
        self._socks = []
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind((HOST, 0))
        self.lsock.listen(backlog)
        self.lsock.settimeout(0.2)
        self.port = self.lsock.getsockname()[1]

    def start(self):
        t = threading.Thread(target=self._accept_loop, name=self.name, daemon=True)
        t.start()
        self._threads.append(t)
        return self

    def stop(self):
        self._stop.set()
        for s in list(self._socks):
            close_quietly(s)
        for t in self._threads:
            t.join(IO_TIMEOUT)
        self.lsock.close()

    def _accepted(self, sock, peer):
        return ()

    def _accept_loop(self):
        while not self._stop.is_set():
            try:
                s, peer = self.lsock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with self.lock:
                self._socks.append(s)
                args = self._accepted(s, peer)
            t = threading.Thread(target=self._serve, args=(s, *args), daemon=True)
            t.start()
            self._threads.append(t)


class ScriptedConn(MTAConn):
    def __init__(self, peer):
        super().__init__(peer)
        self.lines = []                  # command-mode lines (incl. SASL lines), CRLF stripped
        self.messages = []               # DATA contents as received (still dot-stuffed), without final dot
        self.after_starttls = bytearray()
        self.starttls = False
        self.data_started = threading.Event()


class ScriptedMTA(ThreadedServer):
    """Thread-per-connection SMTP server with configurable misbehaviour.

    greet          -- send a 220 greeting at all (False: accept and stay silent)
    greet_delay    -- seconds before the greeting
    reply_delay    -- seconds before every reply
    ehlo           -- capability lines of the EHLO reply (first is the domain line)
    close_on       -- upper-case verb: close the connection instead of answering it
    close_mid_data -- close after this many DATA bytes arrived (no reply)
    """

    name = "scripted-mta"

    def __init__(self, greet=True, greet_delay=0.0, reply_delay=0.0, ehlo=None,
                 close_on=None, close_mid_data=None):
        self.greet = greet
        self.greet_delay = greet_delay
        self.reply_delay = reply_delay
        self.ehlo = list(DEFAULT_EHLO if ehlo is None else ehlo)
        self.close_on = close_on
        self.close_mid_data = close_mid_data
        self.conns = []
        super().__init__()

    def wait_conns(self, n=1, timeout=REPLY_TIMEOUT):
        wait_until(lambda: len(self.conns) >= n, timeout, what=f"{n} upstream connection(s)")
        return self.conns[n - 1]

    def _accepted(self, sock, peer):
        rec = ScriptedConn(peer)
        self.conns.append(rec)
        return (rec,)

    # -- per connection ------------------------------------------------------
    class _Closed(Exception):
        pass

    def _serve(self, s, rec):
        st = {"buf": b""}
        s.settimeout(0.2)
        inbox = bytearray()
        cond = threading.Condition()
        state = {"eof": False}

        def reader():
            # records every byte the moment it arrives, whatever the script is doing
            while not self._stop.is_set():
                try:
                    chunk = s.recv(65536)
                except socket.timeout:
                    continue
                except OSError:
                    chunk = b""
                with cond:
                    if not chunk:
                        state["eof"] = True
                        cond.notify_all()
                        return
                    rec.raw += chunk
                    inbox.extend(chunk)
                    cond.notify_all()
            with cond:
                state["eof"] = True
                cond.notify_all()

        rt = threading.Thread(target=reader, daemon=True)
        rt.start()
        self._threads.append(rt)

        def recv():
            with cond:
                while not inbox and not state["eof"] and not self._stop.is_set():
                    cond.wait(0.2)
                if inbox:
                    chunk = bytes(inbox)
                    del inbox[:]
                    return chunk
            raise self._Closed()

        def readline():
            while b"\n" not in st["buf"]:
                st["buf"] += recv()
            i = st["buf"].index(b"\n") + 1
            line, st["buf"] = st["buf"][:i], st["buf"][i:]
            return line

        def send(data, delay=True):
            if delay and self.reply_delay:
                if self._stop.wait(self.reply_delay):
                    raise self._Closed()
            s.sendall(data)

        def reply(text):
            send(text.encode("latin-1") + CRLF)

        try:
            if not self.greet:
                while True:
                    recv()
            if self.greet_delay and self._stop.wait(self.greet_delay):
                raise self._Closed()
            send(b"220 mta.scripted.test ESMTP scripted\r\n", delay=False)
            while True:
                line = readline()
                text = line.rstrip(b"\r\n").decode("latin-1")
                rec.lines.append(text)
                verb, _, arg = text.partition(" ")
                verb = verb.upper()
                if self.close_on and verb == self.close_on:
                    raise self._Closed()
                if verb == "EHLO":
                    caps = self.ehlo
                    out = "".join(f"250{'-' if i < len(caps) - 1 else ' '}{c}\r\n"
                                  for i, c in enumerate(caps))
                    send(out.encode("latin-1"))
                elif verb == "HELO":
                    reply("250 mta.scripted.test")
                elif verb == "MAIL":
                    reply(f"250 2.1.0 Sender {arg[5:].strip()} ok")
                elif verb == "RCPT":
                    addr = arg[3:].strip()
                    if "reject" in addr.lower():
                        reply(f"550 5.1.1 {addr} recipient rejected")
                    else:
                        reply(f"250 2.1.5 {addr} ok")
                elif verb == "DATA":
                    reply("354 End data with <CR><LF>.<CR><LF>")
                    rec.data_started.set()
                    data = b""
                    while True:
                        probe = b"\r\n" + data
                        end = probe.find(b"\r\n.\r\n")
                        if end >= 0:
                            body = probe[2:end + 2]
                            st["buf"] = probe[end + 5:]
                            break
                        if self.close_mid_data is not None and len(data) >= self.close_mid_data:
                            raise self._Closed()
                        if st["buf"]:
                            data += st["buf"]
                            st["buf"] = b""
                        else:
                            data += recv()
                    rec.messages.append(body)
                    reply(f"250 2.0.0 Ok: queued as S{len(rec.messages)}")
                elif verb in ("RSET", "NOOP"):
                    reply("250 2.0.0 Ok")
                elif verb == "QUIT":
                    reply("221 2.0.0 Bye")
                    raise self._Closed()
                elif verb == "STARTTLS":
                    reply("220 2.0.0 Ready to start TLS")
                    rec.starttls = True
                    # blind relay from now on: record and echo every byte
                    if st["buf"]:
                        rec.after_starttls += st["buf"]
                        send(st["buf"], delay=False)
                    while True:
                        chunk = recv()
                        rec.after_starttls += chunk
                        send(chunk, delay=False)
                elif verb == "AUTH":
                    parts = arg.split()
                    mech = parts[0].upper() if parts else ""
                    if mech == "LOGIN":
                        if len(parts) == 1:
                            reply("334 VXNlcm5hbWU6")
                            rec.lines.append(readline().rstrip(b"\r\n").decode("latin-1"))
                        reply("334 UGFzc3dvcmQ6")
                        rec.lines.append(readline().rstrip(b"\r\n").decode("latin-1"))
                        reply("235 2.7.0 Authentication successful")
                    elif mech == "PLAIN":
                        if len(parts) == 1:
                            reply("334 ")
                            rec.lines.append(readline().rstrip(b"\r\n").decode("latin-1"))
                        reply("235 2.7.0 Authentication successful")
                    else:
                        reply("504 5.5.4 Unrecognized authentication type")
                else:
                    reply("502 5.5.2 Error: command not recognized")
        except (self._Closed, OSError):
            pass
        finally:
            close_quietly(s)
            rec.closed.set()


# --------------------------------------------------------------------------
# log parsing
# --------------------------------------------------------------------------

_ESC_RE = re.compile(rb"\\x([0-9a-fA-F]{2})")
LOG_LINE_RE = re.compile(
    r"^(?P<ts>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)) "
    r"(?P<prog>[A-Za-z0-9_.-]+)\[(?P<pid>\d+)\]: (?P<level>[a-z]+) (?P<event>[a-z_]+)(?P<rest>(?: .*)?)$")


def unescape(value):
    """Undo the log escaping: ``\\xHH`` -> byte.  Returns bytes (the text's UTF-8 with the escapes undone)."""
    if isinstance(value, str):
        value = value.encode("utf-8")
    return _ESC_RE.sub(lambda m: bytes([int(m.group(1), 16)]), value)


def logfmt_tokens(rest):
    """The words of a text line after its event, as logfmt reads them: ``key=value`` pairs (a value bare,
    or in double quotes with ``\\"`` inside) and bare words.  Raises ValueError on an unclosed quote or
    text straight after a closing quote: the renderer writes neither."""
    out, i, n = [], 0, len(rest)
    while i < n:
        if rest[i] == " ":
            i += 1
            continue
        j = i
        while j < n and rest[j] not in " =":
            j += 1
        if j >= n or rest[j] == " ":
            out.append((None, rest[i:j]))
            i = j
            continue
        key, j = rest[i:j], j + 1
        if j < n and rest[j] == '"':
            j += 1
            buf = []
            while True:
                if j >= n:
                    raise ValueError(f"unclosed quote in {rest!r}")
                c = rest[j]
                if c == "\\" and j + 1 < n and rest[j + 1] == '"':
                    buf.append('"')
                    j += 2
                elif c == '"':
                    j += 1
                    break
                else:
                    buf.append(c)
                    j += 1
            if j < n and rest[j] != " ":
                raise ValueError(f"text after a closing quote in {rest!r}")
            out.append((key, "".join(buf)))
        else:
            k = j
            while k < n and rest[k] != " ":
                k += 1
            out.append((key, rest[j:k]))
            j = k
        i = j
    return out


class LogRecord:
    def __init__(self, line, level, event, fields, words=(), ts=None, pid=None, json_obj=None):
        self.line = line
        self.level = level
        self.event = event
        self.fields = fields          # key -> list of values (text: unquoted, \\xHH escapes kept) / JSON values
        self.words = list(words)      # bare words (e.g. "ok"/"failed" after "reload")
        self.ts = ts
        self.pid = pid
        self.json = json_obj

    def get(self, key, default=None):
        """First value of ``key``; the text form is unescaped and decoded as UTF-8 (a byte that is not UTF-8
        comes back as a surrogate escape, so ``.encode("utf-8", "surrogateescape")`` gives the client's bytes)."""
        vals = self.fields.get(key)
        if not vals:
            return default
        v = vals[0]
        if self.json is None:
            return unescape(v).decode("utf-8", "surrogateescape")
        return v

    def getall(self, key):
        vals = self.fields.get(key, [])
        if self.json is None:
            return [unescape(v).decode("utf-8", "surrogateescape") for v in vals]
        return list(vals)

    def raw(self, key):
        """First value of ``key`` as written: unquoted, with its ``\\xHH`` escapes."""
        vals = self.fields.get(key)
        return vals[0] if vals else None

    def __repr__(self):
        return f"LogRecord({self.line!r})"


_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")


def parse_text_line(line):
    m = LOG_LINE_RE.match(line)
    if not m or _CONTROL_RE.search(line):
        raise ValueError(f"unparsable log line: {line!r}")
    fields, words = {}, []
    for k, v in logfmt_tokens(m.group("rest")):
        if k is None:
            words.append(v)
        else:
            fields.setdefault(k, []).append(v)
    return LogRecord(line, m.group("level"), m.group("event"), fields, words,
                     ts=m.group("ts"), pid=int(m.group("pid")))


def parse_json_line(line):
    obj = json.loads(line)
    if not isinstance(obj, dict):
        raise ValueError(f"JSON log line is not an object: {line!r}")
    fields = {k: [v] for k, v in obj.items() if k not in ("ts", "level", "event")}
    words = []
    for k in ("result", "status"):
        if isinstance(obj.get(k), str):
            words.append(obj[k])
    return LogRecord(line, obj.get("level"), obj.get("event"), fields, words,
                     ts=obj.get("ts"), json_obj=obj)


# --------------------------------------------------------------------------
# the proxy
# --------------------------------------------------------------------------

class Proxy:
    def __init__(self, tmp_path, upstream_port, options, log_format="text", tag="p"):
        self.dir = tmp_path
        self.port = free_port()
        self.upstream_port = upstream_port
        self.log_format = log_format
        self.config_path = tmp_path / f"smtpgate-{tag}.conf"
        self.log_path = tmp_path / f"smtpgate-{tag}.log"
        self.stderr_path = tmp_path / f"smtpgate-{tag}.stderr"
        self.pidfile = tmp_path / f"smtpgate-{tag}.pid"
        # Every daemon has a control socket; two at its default path would refuse each other.
        self.control_path = tmp_path / f"control-{tag}.sock"
        self.options = {
            "proxy_name": PROXY_NAME,
            "mode": "fixed",
            "bind_address": HOST,
            "port": self.port,
            "fixed_server": HOST,
            "fixed_server_port": upstream_port,
            "timeout_connect": 3,
            "timeout_idle": 10,
            "timeout_direct": 10,
            "timeout_session": 10,
            "shutdown_timeout": 5,
            "pidfile": str(self.pidfile),
            "control_path": str(self.control_path),
        }
        for k, v in options.items():
            if v is None:
                self.options.pop(k, None)
            else:
                self.options[k] = v
        self.proc = None
        self.expect_exit = False
        self.write_config()

    # -- config -------------------------------------------------------------
    def config_text(self, options=None):
        opts = self.options if options is None else options
        lines = ["# written by the SMTPGate integration tests"]
        for k, v in opts.items():
            if isinstance(v, bool):
                v = "yes" if v else "no"
            lines.append(f"{k} {v}")
        return "\n".join(lines) + "\n"

    def write_config(self, text=None):
        self.config_path.write_text(self.config_text() if text is None else text)

    # -- process ------------------------------------------------------------
    def start(self, timeout=10.0):
        if not os.path.exists(SMTPGATE_BIN):
            pytest.fail(f"smtpgate binary not found at {SMTPGATE_BIN} "
                        f"(build it, or set SMTPGATE_BIN)")
        cmd = [SMTPGATE_BIN, "run", "--config", str(self.config_path), "--log-file", str(self.log_path)]
        if self.log_format == "json":
            cmd += ["--log-format", "json"]
        self.stderr_file = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self.stderr_file,
                                     stderr=self.stderr_file, start_new_session=True)

        def ready():
            if self.proc.poll() is not None:
                return "died"
            # The start line too: another process that happens to hold the port must not pass for this one
            # (a SIGHUP sent before the daemon's handlers are in place would end it).
            return port_listening(self.port) and bool(self.events("start"))

        state = wait_until(ready, timeout, what=f"smtpgate listening on port {self.port}")
        if state == "died" and not self.expect_exit:
            pytest.fail(f"smtpgate exited with {self.proc.returncode} at start-up: {self.stderr()}")
        return self

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig):
        self.proc.send_signal(sig)

    def wait_exit(self, timeout=10.0):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"smtpgate (pid {self.proc.pid}) did not exit within {timeout}s")

    def stop(self, timeout=10.0):
        """SIGTERM, bounded wait, SIGKILL as a last resort.  Returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(IO_TIMEOUT)
                self.stderr_file.close()
                return "killed"
        self.stderr_file.close()
        return self.proc.returncode

    def stderr(self):
        try:
            return self.stderr_path.read_bytes().decode("utf-8", "replace")[-4000:]
        except OSError:
            return ""

    # -- clients ------------------------------------------------------------
    def connect(self, **kw):
        return Client(self.port, **kw)

    # -- log ----------------------------------------------------------------
    def log_text(self):
        try:
            return self.log_path.read_bytes().decode("utf-8", "surrogateescape")
        except OSError:
            return ""

    def log_lines(self):
        text = self.log_text()
        # only complete lines
        if not text.endswith("\n"):
            text = text[: text.rfind("\n") + 1]
        return [l for l in text.split("\n") if l]

    def records(self):
        parse = parse_json_line if self.log_format == "json" else parse_text_line
        return [parse(l) for l in self.log_lines()]

    def events(self, event, **match):
        out = []
        for r in self.records():
            if r.event != event:
                continue
            if all(str(r.get(k)) == str(v) for k, v in match.items()):
                out.append(r)
        return out

    def wait_event(self, event, timeout=5.0, count=1, **match):
        return wait_until(lambda: (lambda evs: evs if len(evs) >= count else None)(self.events(event, **match)),
                          timeout, what=lambda: f"{count} '{event}' log line(s) matching {match}; "
                                                f"log so far:\n{self.log_text()[-3000:]}")

    def session_id(self, client_local, timeout=5.0):
        """Session ID of the ``open`` line whose client= is ``client_local`` ("ip:port")."""
        return self.wait_event("open", timeout, client=client_local)[0].get("session")

    def session_records(self, sid):
        return [r for r in self.records() if str(r.get("session")) == str(sid)]

    def wait_close(self, sid, timeout=5.0):
        return self.wait_event("close", timeout, session=sid)[0]


@pytest.fixture
def mta():
    m = AioMTA().start()
    yield m
    m.stop()


@pytest.fixture
def scripted_mta():
    servers = []

    def make(**kw):
        s = ScriptedMTA(**kw).start()
        servers.append(s)
        return s

    yield make
    for s in servers:
        s.stop()


@pytest.fixture
def closed_port():
    return free_port()


@pytest.fixture
def proxy(tmp_path):
    """Factory: ``proxy(upstream_port, log_format="text", start=True, **options)``."""
    started = []

    def make(upstream_port, log_format="text", start=True, **options):
        p = Proxy(tmp_path, upstream_port, options, log_format=log_format, tag=str(len(started)))
        started.append(p)
        if start:
            p.start()
        return p

    yield make
    problems = []
    for p in started:
        if p.proc is None:
            continue
        crashed = p.proc.poll() is not None and not p.expect_exit
        rc = p.stop()
        print(f"--- smtpgate log ({p.log_path}) ---\n{p.log_text()[-6000:]}")
        print(f"--- smtpgate stderr ---\n{p.stderr()}")
        if crashed:
            problems.append(f"smtpgate exited unexpectedly during the test (rc={p.proc.returncode}): {p.stderr()}")
        elif rc == "killed":
            problems.append("smtpgate did not exit within 10s of SIGTERM and was killed")
    if problems:
        pytest.fail("; ".join(problems))


def start(p, helo="EHLO client.test"):
    """A session through proxy ``p`` past the greeting and HELO/EHLO."""
    c = p.connect()
    assert c.greeting().code == 220
    assert c.cmd(helo).code == 250
    return c


def close_quietly(s):
    """Shut a socket down and close it, ignoring a peer that is already gone."""
    for op in (lambda: s.shutdown(socket.SHUT_RDWR), s.close):
        try:
            op()
        except OSError:
            pass


def ehlo_keywords(reply):
    """Capability lines (without the 250 prefix) of an EHLO reply, first line excluded."""
    return [l[4:] for l in reply.lines[1:]]
