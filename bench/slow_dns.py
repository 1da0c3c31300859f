#!/usr/bin/env python3
"""A slow DNS responder for the DNSBL benchmark (stdlib only); started by bench/run.sh.

  slow_dns.py --port PORT [--delay-ms 5] [--stats FILE]
        answers on 127.0.0.1:PORT (UDP) every query after DELAY ms, each on its own due time: one thread,
        a poll loop and a heap of due replies, so a slow answer never holds up the others (at most
        MAX_PENDING waiting; more are dropped and counted).  Every name under a zone whose first label
        starts with `cached` or `fresh` (1.0.0.127.cached1.bench.example: zone cached1.bench.example) is
        NXDOMAIN, with the zone's SOA in the authority section: TTL and MINIMUM 300 for `cached*` zones
        (a resolver keeps "not listed" 5 minutes), 0 for `fresh*` ones (never cached: a resolver must ask again each time).
        The zone's apex itself exists (NOERROR: its SOA as the answer to an SOA query, else no data with the
        SOA in the authority section).  Other names are REFUSED; malformed packets and responses are ignored
        (counted).  Counters: `queries` (well-formed queries received), `zones` (queries received per zone,
        the figure the benchmark checks), `qtypes`, `answered` (replies sent), `answered_a`, ...
        SIGUSR1 writes the counters to FILE as one JSON line (replaced atomically; `seq` goes up by one
        each time); SIGTERM, SIGINT or SIGHUP stops it, writes them once more and prints a summary on stdout.
  slow_dns.py --probe NAME --port PORT [--wait SECS]
        one A query for NAME, printed as JSON (rcode, SOA TTL and MINIMUM, milliseconds); exit 0 on an answer,
        1 on none.  With --wait, the query is repeated (0.2 s apart) until an answer comes or SECS pass: run.sh
        waits for the server this way, with a name outside the zones (REFUSED, so no zone count moves).
"""
import argparse
import heapq
import json
import os
import random
import select
import signal
import socket
import struct
import sys
import time

MAX_PENDING = 100000
MAX_BATCH = 512            # packets read per wake-up before due replies are sent again
ZONE_TTL = {b"cached": 300, b"fresh": 0}
TYPE_A, TYPE_SOA, TYPE_OPT, CLASS_IN = 1, 6, 41, 1
RCODE_NXDOMAIN, RCODE_REFUSED = 3, 5


class Malformed(Exception):
    pass


def encode_name(labels):
    return b"".join(bytes([len(l)]) + l for l in labels) + b"\0"


def read_name(msg, off):
    """(labels, offset after the name) of an uncompressed name at OFF (a question's never needs a pointer)."""
    labels, total = [], 1
    while True:
        if off >= len(msg):
            raise Malformed("name runs past the end")
        n = msg[off]
        off += 1
        if n == 0:
            return labels, off
        if n > 63:
            raise Malformed("compressed or oversized label")
        total += n + 1
        if total > 255 or off + n > len(msg):
            raise Malformed("name too long")
        labels.append(msg[off:off + n])
        off += n


def parse_query(msg):
    """(id, flags, question bytes, labels, qtype, qclass, has EDNS) of a standard one-question query."""
    if len(msg) < 12:
        raise Malformed("short header")
    qid, flags, qd, _an, _ns, ar = struct.unpack("!6H", msg[:12])
    if flags & 0x8000 or (flags >> 11) & 0xF != 0 or qd != 1:
        raise Malformed("not a standard query with one question")
    labels, off = read_name(msg, 12)
    if off + 4 > len(msg):
        raise Malformed("question cut short")
    qtype, qclass = struct.unpack("!2H", msg[off:off + 4])
    question = msg[12:off + 4]
    off += 4
    edns = ar >= 1 and off + 11 <= len(msg) and msg[off] == 0 and struct.unpack("!H", msg[off + 1:off + 3])[0] == TYPE_OPT
    return qid, flags, question, labels, qtype, qclass, edns


def zone_of(labels):
    """(zone labels, TTL, is the apex) for a name at or under a cached*/fresh* zone, else None."""
    for i, label in enumerate(labels):
        low = label.lower()
        for prefix, ttl in ZONE_TTL.items():
            if low.startswith(prefix):
                return [l.lower() for l in labels[i:]], ttl, i == 0
    return None


def answer(msg):
    """(reply bytes, zone name or None, qtype) for one query packet; raises Malformed."""
    qid, flags, question, labels, qtype, qclass, edns = parse_query(msg)
    found = zone_of(labels) if qclass == CLASS_IN else None
    rd = flags & 0x0100
    if found is None:
        reply = struct.pack("!6H", qid, 0x8000 | rd | 0x0080 | RCODE_REFUSED, 1, 0, 0, 1 if edns else 0) + question
        zone = None
    else:
        zlabels, ttl, apex_asked = found
        apex = encode_name(zlabels)
        rdata = encode_name([b"ns"] + zlabels) + encode_name([b"hostmaster"] + zlabels) \
            + struct.pack("!5I", 1, 3600, 600, 86400, ttl)
        soa = apex + struct.pack("!HHIH", TYPE_SOA, CLASS_IN, ttl, len(rdata)) + rdata
        if apex_asked:
            # the zone exists: its SOA, or no data (NOERROR) with the SOA as the negative TTL's source
            an, ns, rcode = (1, 0, 0) if qtype == TYPE_SOA else (0, 1, 0)
        else:
            an, ns, rcode = 0, 1, RCODE_NXDOMAIN
        # QR, AA, RD as asked, RA; one question, one SOA
        reply = struct.pack("!6H", qid, 0x8000 | 0x0400 | rd | 0x0080 | rcode, 1, an, ns, 1 if edns else 0) \
            + question + soa
        zone = b".".join(zlabels).decode("ascii", "replace")
    if edns:
        reply += b"\0" + struct.pack("!HHIH", TYPE_OPT, 1232, 0, 0)
    return reply, zone, qtype


class Server:
    def __init__(self, port, delay, stats_path):
        self.delay = delay
        self.stats_path = stats_path
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
        self.sock.bind(("127.0.0.1", port))
        self.sock.setblocking(False)
        self.wake_r, self.wake_w = socket.socketpair()
        for s in (self.wake_r, self.wake_w):
            s.setblocking(False)
        self.due = []              # heap of (due time, sequence, reply, address, refused?, qtype)
        self.seq = 0
        self.stop = False
        self.dump = False
        self.started = time.monotonic()
        self.counts = {"queries": 0, "answered": 0, "answered_a": 0, "refused": 0, "malformed": 0, "dropped": 0,
                       "send_errors": 0, "max_pending": 0}
        self.zones = {}            # zone -> queries received for names in it
        self.qtypes = {}           # query type number (as text) -> queries received
        self.stats_seq = 0

    def on_signal(self, signum, _frame):
        if signum == signal.SIGUSR1:
            self.dump = True
        else:
            self.stop = True

    def receive(self):
        for _ in range(MAX_BATCH):
            try:
                msg, addr = self.sock.recvfrom(4096)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                self.counts["malformed"] += 1
                continue
            try:
                reply, zone, qtype = answer(msg)
            except (Malformed, struct.error):
                self.counts["malformed"] += 1
                continue
            self.counts["queries"] += 1
            if zone is not None:
                self.zones[zone] = self.zones.get(zone, 0) + 1
            self.qtypes[str(qtype)] = self.qtypes.get(str(qtype), 0) + 1
            if len(self.due) >= MAX_PENDING:
                self.counts["dropped"] += 1
                continue
            self.seq += 1
            # each reply is due DELAY after its own arrival (not after the batch's first packet)
            heapq.heappush(self.due, (time.monotonic() + self.delay, self.seq, reply, addr, zone is None, qtype))
            self.counts["max_pending"] = max(self.counts["max_pending"], len(self.due))

    def send_due(self):
        now = time.monotonic()
        while self.due and self.due[0][0] <= now:
            _, _, reply, addr, refused, qtype = heapq.heappop(self.due)
            try:
                self.sock.sendto(reply, addr)
            except OSError:
                self.counts["send_errors"] += 1
                continue
            self.counts["answered"] += 1
            if refused:
                self.counts["refused"] += 1
            elif qtype == TYPE_A:
                self.counts["answered_a"] += 1
        return now

    def snapshot(self):
        self.stats_seq += 1
        return dict(self.counts, seq=self.stats_seq, zones=dict(sorted(self.zones.items())),
                    qtypes=dict(sorted(self.qtypes.items())), pending=len(self.due), delay_ms=self.delay * 1000, seconds=round(time.monotonic() - self.started, 3))

    def write_stats(self, snap=None):
        snap = snap or self.snapshot()
        if self.stats_path:
            tmp = self.stats_path + ".tmp"
            try:
                with open(tmp, "w") as f:
                    f.write(json.dumps(snap) + "\n")
                os.replace(tmp, self.stats_path)
            except OSError as e:
                print("slow_dns: cannot write %s: %s" % (self.stats_path, e), file=sys.stderr, flush=True)
        return snap

    def run(self):
        for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1):
            signal.signal(s, self.on_signal)
        signal.set_wakeup_fd(self.wake_w.fileno(), warn_on_full_buffer=False)
        poller = select.poll()
        poller.register(self.sock, select.POLLIN)
        poller.register(self.wake_r, select.POLLIN)
        while not self.stop:
            now = time.monotonic()
            wait = None if not self.due else max(0, int((self.due[0][0] - now) * 1000 + 0.999))
            for fd, _ in poller.poll(wait):
                if fd == self.wake_r.fileno():
                    try:
                        self.wake_r.recv(512)
                    except (BlockingIOError, InterruptedError):
                        pass
            self.receive()
            self.send_due()
            if self.dump:
                self.dump = False
                self.write_stats()
        c = self.write_stats()
        print("slow_dns: %d queries, answered %d (A %d) in %.0fs, delay %g ms: %s; refused %d, malformed %d, dropped %d,"
              " send errors %d, still pending %d, most pending at once %d"
              % (c["queries"], c["answered"], c["answered_a"], c["seconds"], c["delay_ms"],
                 ", ".join("%s %d" % kv for kv in c["zones"].items()) or "no zone asked",
                 c["refused"], c["malformed"], c["dropped"], c["send_errors"], c["pending"], c["max_pending"]),
              flush=True)


def probe(name, port, timeout=2.0):
    """One A query for NAME to 127.0.0.1:PORT: {"rcode", "answers", "ms", and "soa_ttl", "soa_minimum" when an
    SOA comes back}; raises OSError (socket.timeout included) or Malformed."""
    labels = [l.encode("ascii") for l in name.strip(".").split(".")]
    qid = random.randrange(65536)
    query = struct.pack("!6H", qid, 0x0100, 1, 0, 0, 0) + encode_name(labels) + struct.pack("!2H", TYPE_A, CLASS_IN)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        t0 = time.monotonic()
        s.sendto(query, ("127.0.0.1", port))
        while True:            # bounded by the deadline: stray packets do not extend it
            left = t0 + timeout - time.monotonic()
            if left <= 0:
                raise socket.timeout("timed out")
            s.settimeout(left)
            msg, addr = s.recvfrom(4096)
            if addr[0] == "127.0.0.1" and addr[1] == port and len(msg) >= 12 and struct.unpack("!H", msg[:2])[0] == qid:
                break
        ms = (time.monotonic() - t0) * 1000
    _, flags, qd, an, ns, _ = struct.unpack("!6H", msg[:12])
    out = {"rcode": flags & 0xF, "answers": an, "ms": round(ms, 2)}
    off = 12
    for _ in range(qd):
        _, off = read_name(msg, off)
        off += 4
    for _ in range(an + ns):   # our own replies never compress names
        _, off = read_name(msg, off)
        if off + 10 > len(msg):
            raise Malformed("record cut short")
        rtype, _, ttl, rdlen = struct.unpack("!HHIH", msg[off:off + 10])
        rdata = msg[off + 10:off + 10 + rdlen]
        off += 10 + rdlen
        if rtype == TYPE_SOA and len(rdata) >= 20:
            out["soa_ttl"] = ttl
            out["soa_minimum"] = struct.unpack("!I", rdata[-4:])[0]
    return out


def main():
    ap = argparse.ArgumentParser(description="slow DNS responder on 127.0.0.1 for the DNSBL benchmark")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--delay-ms", type=float, default=5.0)
    ap.add_argument("--stats", default="", help="file for the counters (written on SIGUSR1 and at exit)")
    ap.add_argument("--probe", default="", help="send one A query for this name and print the answer")
    ap.add_argument("--wait", type=float, default=0.0, help="with --probe: ask again until an answer or SECS pass")
    a = ap.parse_args()
    if not 1 <= a.port <= 65535 or not 0 <= a.delay_ms <= 60000 or not 0 <= a.wait <= 300:
        ap.error("--port must be 1-65535, --delay-ms 0-60000, --wait 0-300")
    if a.probe:
        deadline = time.monotonic() + a.wait
        while True:
            try:
                print(json.dumps(probe(a.probe, a.port, timeout=min(2.0, max(0.2, a.wait or 2.0)))))
                return 0
            except (OSError, Malformed, struct.error) as e:
                if time.monotonic() >= deadline:
                    print("no answer from 127.0.0.1:%d: %s" % (a.port, e), file=sys.stderr)
                    return 1
            time.sleep(0.2)
    Server(a.port, a.delay_ms / 1000.0, a.stats).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
