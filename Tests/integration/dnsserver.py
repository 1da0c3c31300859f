"""DNS servers on 127.0.0.1 for the ``dnsbl`` tests (fixtures imported by test_dnsbl.py).

* ``dnsmasq`` -- factory ``dnsmasq(records)``: Debian's dnsmasq on 127.0.0.1, a free UDP+TCP port, no
  upstream (``--no-resolv``), authoritative-by-``--local`` for ``example`` (any other name there is
  NXDOMAIN, never forwarded), serving ``records`` (``{name: address}`` or ``[(name, address), ...]``,
  ``--host-record`` each; a name given twice has both addresses) and logging every query to a file
  (``queries()``); ``forward={domain: scripted}`` sends one domain's questions to a ScriptedDNS.
  Returned once it answers a probe; stopped (SIGTERM, then SIGKILL) at teardown.
* ``scripted_dns`` -- factory ``scripted_dns("silent" | "servfail")``: a UDP socket on 127.0.0.1 that reads
  every question and either never answers or answers SERVFAIL; it counts the questions it got.

Both have ``.address`` in ``dns_server`` form (``127.0.0.1@PORT``).
"""

import os
import random
import socket
import struct
import subprocess
import threading
import time

import pytest

DNSMASQ_BIN = "/usr/sbin/dnsmasq"
HOST = "127.0.0.1"


def free_udp_tcp_port():
    """A port of 127.0.0.1 free for both UDP and TCP a moment ago (dnsmasq binds both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind((HOST, 0))
            port = u.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
                try:
                    t.bind((HOST, port))
                except OSError:
                    continue
            return port
    raise RuntimeError("no port free for both UDP and TCP on 127.0.0.1")


def encode_name(name):
    out = b""
    for label in name.rstrip(".").split("."):
        out += bytes([len(label)]) + label.encode("ascii")
    return out + b"\x00"


def query_packet(name, qtype=1, qid=None):
    qid = random.randrange(65536) if qid is None else qid
    return qid, struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0) + encode_name(name) + struct.pack(">HH", qtype, 1)


def udp_query(port, name, qtype=1, timeout=0.5):
    """One UDP question to 127.0.0.1:``port``; returns (rcode, [A addresses]) or None without an answer."""
    qid, pkt = query_packet(name, qtype)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(pkt, (HOST, port))
        try:
            data, _ = s.recvfrom(4096)
        except (socket.timeout, ConnectionRefusedError, OSError):
            return None
    if len(data) < 12 or struct.unpack(">H", data[:2])[0] != qid:
        return None
    flags, qd, an = struct.unpack(">HHH", data[2:8])
    i = 12
    for _ in range(qd):            # skip the question
        while data[i] != 0:
            i += data[i] + 1
        i += 5
    addrs = []
    for _ in range(an):
        if data[i] & 0xC0 == 0xC0:
            i += 2
        else:
            while data[i] != 0:
                i += data[i] + 1
            i += 1
        rtype, _cls, _ttl, rdlen = struct.unpack(">HHIH", data[i:i + 10])
        i += 10
        if rtype == 1 and rdlen == 4:
            addrs.append(socket.inet_ntoa(data[i:i + 4]))
        i += rdlen
    return flags & 0x000F, addrs


def reversed_name(client, zone):
    """The name a blocklist is asked for ``client`` (IPv4): 127.0.0.31 in bl.example -> 31.0.0.127.bl.example."""
    return ".".join(reversed(client.split("."))) + "." + zone


class Dnsmasq:
    def __init__(self, workdir, records, local=("example",), extra=()):
        if not os.access(DNSMASQ_BIN, os.X_OK):
            pytest.fail(f"dnsmasq is not installed ({DNSMASQ_BIN} missing): apt-get install dnsmasq-base")
        if isinstance(records, dict):
            records = list(records.items())
        self.records = list(records)
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.dir / "dnsmasq.log"
        self.port = free_udp_tcp_port()
        self.argv = [DNSMASQ_BIN, "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
                     "--bind-interfaces", "--listen-address=127.0.0.1", f"--port={self.port}",
                     f"--pid-file={self.dir}/dnsmasq.pid", "--user=root", "--group=root", "--local-ttl=300",
                     "--log-queries", f"--log-facility={self.log_path}"]
        self.argv += [f"--local=/{d}/" for d in local]
        self.argv += [f"--host-record={name},{addr}" for name, addr in self.records]
        self.argv += list(extra)
        self.proc = None

    @property
    def address(self):
        return f"{HOST}@{self.port}"

    def start(self, timeout=5.0):
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=open(self.dir / "dnsmasq.stderr", "wb"), start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"dnsmasq exited at start ({self.proc.returncode}): {self.stderr()} {self.log()}")
            if udp_query(self.port, "probe.example", timeout=0.2) is not None:
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"dnsmasq did not answer on {HOST}:{self.port} within {timeout}s: {self.log()}")

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)

    def log(self):
        try:
            return self.log_path.read_text(errors="replace")[-3000:]
        except OSError:
            return ""

    def stderr(self):
        try:
            return (self.dir / "dnsmasq.stderr").read_text(errors="replace")[-2000:]
        except OSError:
            return ""

    def queries(self, name=None):
        """Names asked (``query[A] NAME from ...`` lines), optionally only ``name``; the probe excluded."""
        out = []
        for line in self.log().splitlines():
            if " query[" not in line:
                continue
            asked = line.split(" query[", 1)[1].split("] ", 1)[1].split(" from ", 1)[0]
            if asked == "probe.example":
                continue
            if name is None or asked == name:
                out.append(asked)
        return out


class ScriptedDNS:
    """A UDP socket that reads questions and never answers (``silent``) or answers SERVFAIL (``servfail``)."""

    def __init__(self, mode="silent"):
        assert mode in ("silent", "servfail"), mode
        self.mode = mode
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((HOST, 0))
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.questions = []
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name=f"dns-{mode}", daemon=True)

    @property
    def address(self):
        return f"{HOST}@{self.port}"

    def start(self):
        self._thread.start()
        return self

    def _serve(self):
        while not self._stop.is_set():
            try:
                data, peer = self.sock.recvfrom(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            if len(data) < 12:
                continue
            with self.lock:
                self.questions.append(data)
            if self.mode == "servfail":
                i = 12
                while i < len(data) and data[i] != 0:
                    i += data[i] + 1
                reply = bytearray(data[:min(len(data), i + 5)])
                reply[2] = 0x80 | (data[2] & 0x01)
                reply[3] = 0x82                   # RA, RCODE 2
                reply[6:12] = b"\x00" * 6
                try:
                    self.sock.sendto(bytes(reply), peer)
                except OSError:
                    pass

    def stop(self):
        self._stop.set()
        self._thread.join(5)
        self.sock.close()


@pytest.fixture
def dnsmasq(tmp_path):
    """Factory: ``dnsmasq(records)`` -> a started Dnsmasq serving ``records``."""
    servers = []

    def make(records=(), local=("example",), forward=None, txt=()):
        """``forward``: {domain: ScriptedDNS} -- questions under domain go to that server instead;
        ``txt``: [(name, text)] TXT records (SPF)."""
        extra = [f"--server=/{dom}/127.0.0.1#{srv.port}" for dom, srv in (forward or {}).items()]
        extra += [f"--txt-record={name},{text}" for name, text in txt]
        d = Dnsmasq(tmp_path / f"dnsmasq-{len(servers)}", records, local=local, extra=extra)
        servers.append(d)
        return d.start()

    yield make
    for d in servers:
        d.stop()
        print(f"--- dnsmasq log ({d.log_path}) ---\n{d.log()}")


@pytest.fixture
def scripted_dns():
    """Factory: ``scripted_dns("silent" | "servfail")`` -> a started ScriptedDNS."""
    servers = []

    def make(mode="silent"):
        s = ScriptedDNS(mode).start()
        servers.append(s)
        return s

    yield make
    for s in servers:
        s.stop()
