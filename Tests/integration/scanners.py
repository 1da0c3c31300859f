"""Scanner fixtures for the content-scanning tests (registered as a pytest plugin by conftest.py).

* ``clamd``        -- session-wide real clamd (Debian ``clamav-daemon``) on a unix socket and on
                      127.0.0.1:PORT, with a one-signature database made at start: the MD5 of the EICAR
                      test file (``sigtool --md5``), so it needs no download.  ``clamd.virus`` is the name
                      clamd reports for it (``eicar.com.UNOFFICIAL``).
* ``private_clamd`` -- factory for a clamd of the test's own, for tests that stop it.
* ``spamd``        -- session-wide real spamd (Debian ``spamd``), local tests only, on 127.0.0.1:PORT.
* ``fake_scanner`` -- factory for a misbehaving scanner on 127.0.0.1: ``"garbage"`` reads the whole request
                      and answers ``hello there\\n``; ``"silent"`` reads and never answers.
* ``mta_closing_after_dot`` -- an MTA that takes the whole message, final dot included, and then closes
                      without a reply.
* message builders (EICAR as a base64 MIME attachment, the same message with a harmless attachment,
  GTUBE) and SMTP helpers shared by test_scan*.py.

Every daemon runs in its own process group and is stopped by its own pid; every wait is bounded.
"""

import base64
import email.utils
import os
import shutil
import signal
import socket
import stat
import struct
import subprocess
import tempfile
import threading
import time

import pytest

from conftest import CRLF, HOST, IO_TIMEOUT, REPLY_TIMEOUT, ThreadedServer, close_quietly, free_port, wait_until

CLAMD_BIN = "/usr/sbin/clamd"
SIGTOOL_BIN = "/usr/bin/sigtool"
SPAMD_BIN = "/usr/sbin/spamd"

CLAMD_START_TIMEOUT = 60.0
SPAMD_START_TIMEOUT = 90.0

# The standard anti-virus and anti-spam test strings (harmless by design).
EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
GTUBE = b"XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"
assert len(EICAR) == 68


# --------------------------------------------------------------------------
# messages
# --------------------------------------------------------------------------

def _crlf(text):
    """``text`` (str or bytes, lines separated by LF) with every line ending in CRLF."""
    if isinstance(text, str):
        text = text.encode()
    return b"".join(line + CRLF for line in text.split(b"\n"))


def headers(subject, mail_from="alice@customer.test", to="bob@example.test", extra=()):
    """A plausible header block (complete, so spamd scores an innocent message low)."""
    lines = [
        f"From: Alice <{mail_from}>",
        f"To: Bob <{to}>",
        f"Subject: {subject}",
        f"Date: {email.utils.formatdate(localtime=False)}",
        f"Message-ID: <{time.time_ns()}.{os.getpid()}@customer.test>",
        "MIME-Version: 1.0",
        *extra,
    ]
    return _crlf("\n".join(lines))


def mime_message(payload, filename, subject="quarterly report", text=None, boundary="=-=smtpgate-test=-="):
    """A multipart/mixed message: a text part and ``payload`` as a base64 attachment, CRLF throughout."""
    if text is None:
        text = b"Hello Bob,\n\nplease find the file attached.\n\n-- \nAlice"
    b64 = base64.encodebytes(payload).replace(b"\n", CRLF)
    return (headers(subject, extra=[f'Content-Type: multipart/mixed; boundary="{boundary}"'])
            + CRLF
            + b"This is a multi-part message in MIME format.\r\n"
            + f"--{boundary}\r\n".encode()
            + b"Content-Type: text/plain; charset=us-ascii\r\n\r\n"
            + _crlf(text)
            + f"--{boundary}\r\n".encode()
            + f'Content-Type: application/octet-stream; name="{filename}"\r\n'.encode()
            + b"Content-Transfer-Encoding: base64\r\n"
            + f'Content-Disposition: attachment; filename="{filename}"\r\n\r\n'.encode()
            + b64
            + f"--{boundary}--\r\n".encode())


def eicar_message(**kw):
    """EICAR as a base64 attachment named eicar.com."""
    return mime_message(EICAR, "eicar.com", **kw)


def harmless_message(**kw):
    """The same structure as ``eicar_message`` with a harmless 68-byte attachment."""
    return mime_message(b"This attachment is a perfectly harmless sixty-eight byte text file\r\n",
                        "notes.txt", **kw)


def gtube_message(subject="cheap offer"):
    return headers(subject) + CRLF + _crlf(b"Hello,\n\n" + GTUBE + b"\n\nbye")


def clean_message(subject="lunch", body=b"Hi Bob,\n\nlunch at noon tomorrow?\n\nAlice"):
    return headers(subject) + CRLF + _crlf(body)


def dot_stuff(body):
    """``body`` (ending in CRLF or empty) as DATA bytes including the terminating dot line."""
    assert body == b"" or body.endswith(CRLF), "test bodies end in CRLF"
    stuffed = b"." + body if body.startswith(b".") else body
    stuffed = stuffed.replace(b"\r\n.", b"\r\n..")
    return stuffed + b".\r\n"


def spool_files(spool):
    """The files under a spool directory, sorted."""
    return sorted(x for x in spool.rglob("*") if x.is_file())


def assert_spool(spool, body, kept):
    """Either exactly one spool file remains, owner-only and holding ``body`` (un-stuffed), or none."""
    files = spool_files(spool)
    if kept:
        (f,) = files
        assert f.read_bytes() == body
        assert stat.S_IMODE(f.stat().st_mode) == 0o600
    else:
        assert files == []


def send_message(c, body, mail_from="alice@customer.test", rcpts=("bob@example.test",), timeout=REPLY_TIMEOUT):
    """One transaction in lock step; returns the reply to the final dot."""
    r = c.cmd(f"MAIL FROM:<{mail_from}>")
    assert r.code == 250, r
    for rcpt in rcpts:
        r = c.cmd(f"RCPT TO:<{rcpt}>")
        assert r.code == 250, r
    r = c.cmd("DATA")
    assert r.code == 354, r
    c.send(dot_stuff(body))
    return c.read_reply(timeout)


# --------------------------------------------------------------------------
# process helpers
# --------------------------------------------------------------------------

def _stop_process(proc, timeout=10.0):
    """SIGTERM to the process group we created for ``proc``, bounded wait, SIGKILL as a last resort."""
    if proc is None or proc.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, IO_TIMEOUT)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


def _tail(path, n=3000):
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")[-n:]
    except OSError:
        return ""


# --------------------------------------------------------------------------
# clamd
# --------------------------------------------------------------------------

def clamd_request(endpoint, command, data=None, timeout=IO_TIMEOUT):
    """One clamd command (``zPING``, ``zINSTREAM`` with ``data``) on a unix path or ("127.0.0.1", port);
    returns the NUL-terminated answer without the NUL."""
    family = socket.AF_UNIX if isinstance(endpoint, str) else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(endpoint)
        s.sendall(b"z" + command + b"\0")
        if data is not None:
            for i in range(0, len(data), 65536):
                piece = data[i:i + 65536]
                s.sendall(struct.pack(">I", len(piece)) + piece)
            s.sendall(struct.pack(">I", 0))
        out = b""
        deadline = time.monotonic() + timeout
        while not out.endswith(b"\0"):
            if time.monotonic() > deadline or len(out) > 65536:
                raise AssertionError(f"clamd answer incomplete: {out!r}")
            chunk = s.recv(4096)
            if not chunk:
                break
            out += chunk
        return out.rstrip(b"\0").decode("latin-1")


class Clamd:
    """A real clamd with its own configuration, database, sockets and log in a short temp dir
    (a unix socket path must stay under 108 bytes)."""

    def __init__(self):
        if not os.path.exists(CLAMD_BIN):
            pytest.skip(f"{CLAMD_BIN} missing (run scripts/deps.sh)")
        self.dir = tempfile.mkdtemp(prefix="sgclamd-", dir="/tmp")
        self.db = os.path.join(self.dir, "db")
        os.mkdir(self.db)
        eicar = os.path.join(self.dir, "eicar.com")
        with open(eicar, "wb") as f:
            f.write(EICAR)
        sig = subprocess.run([SIGTOOL_BIN, "--md5", "eicar.com"], cwd=self.dir, capture_output=True, timeout=30)
        if sig.returncode != 0 or not sig.stdout.strip():
            raise RuntimeError(f"sigtool --md5 failed: {sig.stderr!r}")
        with open(os.path.join(self.db, "test.hdb"), "wb") as f:
            f.write(sig.stdout)
        self.unix = os.path.join(self.dir, "clamd.sock")
        self.port = free_port()
        self.tcp = f"{HOST}:{self.port}"
        self.log = os.path.join(self.dir, "clamd.log")
        self.stderr_path = os.path.join(self.dir, "clamd.stderr")
        self.conf = os.path.join(self.dir, "clamd.conf")
        with open(self.conf, "w") as f:
            f.write("\n".join([
                "Foreground yes",
                "User root",
                f"DatabaseDirectory {self.db}",
                f"LocalSocket {self.unix}",
                f"TCPSocket {self.port}",
                f"TCPAddr {HOST}",
                f"LogFile {self.log}",
                f"PidFile {os.path.join(self.dir, 'clamd.pid')}",
                f"TemporaryDirectory {self.dir}",
                "StreamMaxLength 64M",
                # no surprise database reloads in the middle of a test run
                "SelfCheck 3600",
            ]) + "\n")
        self.proc = None
        self.virus = None
        self.start_seconds = None

    def path(self, via):
        """``antivirus_path`` for ``via`` = "unix" or "tcp"."""
        return {"unix": self.unix, "tcp": self.tcp}[via]

    def ping(self):
        try:
            return clamd_request(self.unix, b"PING", timeout=2) == "PONG"
        except OSError:
            return False

    def start(self, timeout=CLAMD_START_TIMEOUT):
        t0 = time.monotonic()
        self._stderr = open(self.stderr_path, "ab")
        self.proc = subprocess.Popen([CLAMD_BIN, f"--config-file={self.conf}"], stdin=subprocess.DEVNULL,
                                     stdout=self._stderr, stderr=self._stderr, start_new_session=True)

        def ready():
            if self.proc.poll() is not None:
                return "died"
            return self.ping()

        state = wait_until(ready, timeout, interval=0.1, what=lambda: f"clamd PONG; log:\n{_tail(self.log)}")
        if state == "died":
            raise RuntimeError(f"clamd exited with {self.proc.returncode}: {_tail(self.stderr_path)} {_tail(self.log)}")
        self.start_seconds = time.monotonic() - t0
        # the name clamd gives the test signature, asked over TCP (so both sockets are proven to work)
        answer = clamd_request((HOST, self.port), b"INSTREAM", EICAR)
        if not answer.startswith("stream: ") or not answer.endswith(" FOUND"):
            raise RuntimeError(f"clamd did not detect EICAR: {answer!r}")
        self.virus = answer[len("stream: "):-len(" FOUND")]
        return self

    def stop(self):
        _stop_process(self.proc)
        if getattr(self, "_stderr", None):
            self._stderr.close()
        # a stopped clamd refuses on both sockets (it removes its unix socket on a clean exit)
        wait_until(lambda: not self.ping(), 5, what="clamd stopped answering")

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="session")
def clamd():
    c = Clamd().start()
    print(f"clamd ready in {c.start_seconds:.2f}s, virus name {c.virus!r}")
    yield c
    c.cleanup()


@pytest.fixture
def private_clamd():
    """Factory: a started clamd that belongs to this test alone (stop it at will)."""
    made = []

    def make():
        c = Clamd()
        made.append(c)
        return c.start()

    yield make
    for c in made:
        c.cleanup()


# --------------------------------------------------------------------------
# spamd
# --------------------------------------------------------------------------

def spamd_request(port, verb, message=b"", timeout=30.0):
    """One spamc-protocol request; returns (status line, header dict, body)."""
    with socket.create_connection((HOST, port), timeout=timeout) as s:
        s.settimeout(timeout)
        head = f"{verb} SPAMC/1.5\r\n"
        if verb != "PING":
            head += f"Content-length: {len(message)}\r\n"
        s.sendall(head.encode() + CRLF + message)
        s.shutdown(socket.SHUT_WR)
        out = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and len(out) < 1 << 20:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
    head, _, body = out.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    fields = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        fields[k.strip().lower()] = v.strip()
    return lines[0], fields, body


class Spamd:
    def __init__(self):
        if not os.path.exists(SPAMD_BIN):
            pytest.skip(f"{SPAMD_BIN} missing (run scripts/deps.sh)")
        self.dir = tempfile.mkdtemp(prefix="sgspamd-", dir="/tmp")
        self.port = free_port()
        self.addr = f"{HOST}:{self.port}"
        self.log = os.path.join(self.dir, "spamd.log")
        self.pidfile = os.path.join(self.dir, "spamd.pid")
        self.proc = None
        self.start_seconds = None

    def ping(self):
        try:
            status, _, _ = spamd_request(self.port, "PING", timeout=2)
        except OSError:
            return False
        return status.startswith("SPAMD/") and status.endswith("PONG")

    def check(self, message, timeout=30.0):
        """spamd's own (score, threshold) for ``message``."""
        status, fields, _ = spamd_request(self.port, "CHECK", message, timeout=timeout)
        if " 0 EX_OK" not in status or "spam" not in fields:
            raise AssertionError(f"spamd CHECK failed: {status!r} {fields!r}")
        score, _, threshold = fields["spam"].partition(";")[2].partition("/")
        return float(score), float(threshold)

    def start(self, timeout=SPAMD_START_TIMEOUT):
        t0 = time.monotonic()
        self._out = open(self.log, "ab")
        cmd = [SPAMD_BIN, "--local", "--nouser-config", "--username=nobody", "--ipv4-only",
               f"--listen={self.addr}", f"--allowed-ips={HOST}",
               "--max-children=3", "--min-children=1", "--min-spare=1", "--max-spare=2",
               f"--pidfile={self.pidfile}", "--syslog=stderr"]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self._out, stderr=self._out,
                                     cwd=self.dir, start_new_session=True)

        def ready():
            if self.proc.poll() is not None:
                return "died"
            return self.ping()

        state = wait_until(ready, timeout, interval=0.2, what=lambda: f"spamd PONG; log:\n{_tail(self.log)}")
        if state == "died":
            raise RuntimeError(f"spamd exited with {self.proc.returncode}: {_tail(self.log)}")
        # the first CHECK of a child compiles the rules; do it here, not inside a test's timeout
        self.gtube_score, self.spamd_threshold = self.check(gtube_message(), timeout=timeout)
        self.start_seconds = time.monotonic() - t0
        if self.gtube_score < 1000:
            raise RuntimeError(f"GTUBE scored {self.gtube_score} (< 1000): rules missing?")
        return self

    def stop(self):
        _stop_process(self.proc)
        if getattr(self, "_out", None):
            self._out.close()

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="session")
def spamd():
    s = Spamd().start()
    print(f"spamd ready in {s.start_seconds:.2f}s, GTUBE scores {s.gtube_score}")
    yield s
    s.cleanup()


# --------------------------------------------------------------------------
# misbehaving scanners
# --------------------------------------------------------------------------

def _read_request(sock, buf, stop, deadline):
    """Read one whole clamd INSTREAM or spamc request (or whatever arrives until the peer is quiet for
    0.5 s); returns what was read.  Bounded by ``deadline`` and 64 MiB."""

    def more(quiet=None):
        sock.settimeout(quiet if quiet is not None else 0.2)
        while not stop.is_set() and time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except socket.timeout:
                if quiet is not None:
                    return False
                continue
            if not chunk:
                return False
            buf.extend(chunk)
            if len(buf) > 64 << 20:
                return False
            return True
        return False

    while len(buf) < 10 and more():
        pass
    if buf.startswith((b"zINSTREAM\0", b"nINSTREAM\n")):
        pos = 10
        while True:
            while len(buf) < pos + 4:
                if not more():
                    return bytes(buf)
            n = struct.unpack(">I", bytes(buf[pos:pos + 4]))[0]
            pos += 4
            if n == 0:
                return bytes(buf)
            while len(buf) < pos + n:
                if not more():
                    return bytes(buf)
            pos += n
    if buf[:6].isalpha():
        while b"\r\n\r\n" not in buf:
            if not more():
                return bytes(buf)
        end = buf.index(b"\r\n\r\n") + 4
        length = 0
        for line in bytes(buf[:end]).lower().split(b"\r\n"):
            if line.startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1].strip() or 0)
        while len(buf) < end + length:
            if not more():
                return bytes(buf)
        return bytes(buf)
    while more(quiet=0.5):
        pass
    return bytes(buf)


class FakeScanner(ThreadedServer):
    """A scanner on 127.0.0.1 that misbehaves: ``garbage`` answers ``answer`` after the whole request and
    closes; ``silent`` takes the request and never answers (holding the connection until stopped)."""

    def __init__(self, mode, answer=b"hello there\n"):
        assert mode in ("garbage", "silent")
        self.mode = mode
        self.answer = answer
        self.requests = []           # bytes of each request as received
        self.name = f"fake-scanner-{mode}"
        super().__init__()
        self.addr = f"{HOST}:{self.port}"

    @property
    def conns(self):
        return len(self.requests)

    def _accepted(self, sock, peer):
        self.requests.append(b"")
        return (len(self.requests) - 1,)

    def _serve(self, s, idx):
        buf = bytearray()
        try:
            data = _read_request(s, buf, self._stop, time.monotonic() + 30)
            with self.lock:
                self.requests[idx] = data
            if self.mode == "garbage":
                s.sendall(self.answer)
            else:
                # hold the connection, draining whatever else comes, until the peer or the test ends it
                s.settimeout(0.2)
                while not self._stop.is_set():
                    try:
                        if not s.recv(65536):
                            break
                    except socket.timeout:
                        continue
        except OSError:
            pass
        finally:
            close_quietly(s)


@pytest.fixture
def fake_scanner():
    """Factory: ``fake_scanner("garbage" | "silent", answer=b"...")``."""
    made = []

    def make(mode, **kw):
        f = FakeScanner(mode, **kw).start()
        made.append(f)
        return f

    yield make
    for f in made:
        f.stop()


# --------------------------------------------------------------------------
# an MTA that vanishes after the final dot
# --------------------------------------------------------------------------

class MTAClosingAfterDot(ThreadedServer):
    """Greets, accepts EHLO/MAIL/RCPT/DATA (advertising PIPELINING, no ENHANCEDSTATUSCODES), reads the
    message up to and including the final dot, then closes without a reply.  ``dots`` counts the final
    dots it saw; ``messages`` holds the dot-stuffed bodies."""

    name = "mta-closing-after-dot"

    def __init__(self):
        self.messages = []
        self.dots = threading.Event()
        self.closed = threading.Event()
        super().__init__(backlog=16)

    def _serve(self, s):
        buf = bytearray()
        s.settimeout(0.2)

        def fill():
            while not self._stop.is_set():
                try:
                    chunk = s.recv(65536)
                except socket.timeout:
                    continue
                if not chunk:
                    raise OSError("peer closed")
                buf.extend(chunk)
                return
            raise OSError("stopped")

        def line():
            while b"\n" not in buf:
                fill()
            i = buf.index(b"\n") + 1
            out = bytes(buf[:i])
            del buf[:i]
            return out

        try:
            s.sendall(b"220 mta.closing.test ESMTP\r\n")
            while True:
                verb = line()[:4].upper()
                if verb == b"EHLO":
                    s.sendall(b"250-mta.closing.test\r\n250-PIPELINING\r\n250 8BITMIME\r\n")
                elif verb == b"DATA":
                    s.sendall(b"354 go ahead\r\n")
                    while True:
                        probe = b"\r\n" + bytes(buf)
                        end = probe.find(b"\r\n.\r\n")
                        if end >= 0:
                            self.messages.append(probe[2:end + 2])
                            self.dots.set()
                            return
                        fill()
                elif verb == b"QUIT":
                    s.sendall(b"221 bye\r\n")
                    return
                else:
                    s.sendall(b"250 ok\r\n")
        except OSError:
            pass
        finally:
            close_quietly(s)
            self.closed.set()


@pytest.fixture
def mta_closing_after_dot():
    m = MTAClosingAfterDot().start()
    yield m
    m.stop()
