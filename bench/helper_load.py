#!/usr/bin/env python3
"""Load generator for smtpgate-helper (bench; stdlib only).  Started by bench/run.sh.

  helper_load.py entries --first K --count N [layout options]
      prints `conntrack -R` input: one "-I ..." line per entry K .. N-1 (conntrack -I in bulk)
  helper_load.py run HELPER_IP --entries N (--key FILE | --legacy-secret S) [options]
      keeps --inflight queries outstanding for --seconds (after --warmup) against the helper,
      each asking about an entry chosen at random among 0 .. N-1; checks every reply is FOUND
      and names that entry's real client and destination; prints one JSON line:
      rate (answered lookups/s), round-trip p50/p90/p99/max in microseconds, error counts.

Entry i (a split-mode connection as the router's conntrack holds it, made up but unique):
  original  client 10.77.(128 + (i >> 8) % 128).(i & 255) : 1024 + (i >> 15)  ->  DEST (10.77.3.25:25)
  reply     PROXY (10.77.2.10:9199)  ->  SNAT 10.77.2.(1 + i // 64000) : 1024 + i % 64000
The proxy would ask about SNAT:port -> PROXY, which is what a query carries.

Exit status: 0 when every reply was FOUND and matched and nothing was lost; 1 otherwise
(the JSON line is printed either way); 2 on a usage error.
"""
import argparse
import hashlib
import hmac
import ipaddress
import json
import os
import random
import select
import socket
import struct
import sys
import time

LEGACY_MAGIC = 0x52504844        # "RPHD", version 0x0402, 66 bytes
LEGACY_FMT = "!IIIHH4s4sHH32s6s"
V2_MAGIC = 0x52504832            # "RPH2", 160 bytes (128 + HMAC-SHA256)
V2_HEAD = "!IHHQ8sBBH16s16sHH64s"
QUERY = 0x0001
FOUND = 0x0012                   # REPLY | FOUND
NOTFOUND = 0x0022                # REPLY | NOTFOUND
PORTS_PER_SNAT = 64000


def ip_int(text):
    return int(ipaddress.IPv4Address(text))


def hostport(text):
    host, _, port = text.rpartition(":")
    return ip_int(host), int(port)


class Layout:
    """Entry number -> the conntrack entry's addresses (IPv4, as integers)."""

    def __init__(self, a):
        self.client_base = ip_int(a.client_base)
        self.dest, self.dest_port = hostport(a.dest)
        self.proxy, self.proxy_port = hostport(a.proxy)
        self.snat_base = ip_int(a.snat_base)

    def entry(self, i):
        client = self.client_base + (((i >> 8) % 128) << 8) + (i & 255)
        cport = 1024 + (i >> 15)
        snat = self.snat_base + i // PORTS_PER_SNAT
        sport = 1024 + i % PORTS_PER_SNAT
        return client, cport, self.dest, self.dest_port, snat, sport, self.proxy, self.proxy_port


def dotted(n):
    return str(ipaddress.IPv4Address(n))


def cmd_entries(a):
    lay = Layout(a)
    if a.first < 0 or a.count < a.first or a.count >= PORTS_PER_SNAT * 200:
        print("bad --first/--count", file=sys.stderr)
        return 2
    out = sys.stdout
    for i in range(a.first, a.count):
        c, cp, d, dp, s, sp, p, pp = lay.entry(i)
        out.write("-I -p tcp -s %s -d %s --sport %d --dport %d -r %s -q %s --reply-port-src %d "
                  "--reply-port-dst %d --state ESTABLISHED -t %d -u SEEN_REPLY\n"
                  % (dotted(c), dotted(d), cp, dp, dotted(p), dotted(s), pp, sp, a.ttl))
    return 0


def key_bytes(path):
    data = open(path, "rb").read()
    return data[:-1] if data.endswith(b"\n") else data


def pct(sorted_vals, q):
    if not sorted_vals:
        return None
    k = max(0, min(len(sorted_vals) - 1, int(round(q * len(sorted_vals) + 0.5)) - 1))
    return sorted_vals[k]


def cmd_run(a):
    lay = Layout(a)
    rng = random.Random(a.seed)
    v2 = a.key is not None
    key = key_bytes(a.key) if v2 else None
    secret = a.legacy_secret or 0
    nonce_base = int.from_bytes(os.urandom(8), "big")
    counter = 0

    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    sock.connect((a.helper, a.port))
    sock.setblocking(False)
    poller = select.epoll()
    poller.register(sock.fileno(), select.EPOLLIN)

    pack_legacy = struct.Struct(LEGACY_FMT).pack
    unpack_legacy = struct.Struct("!IIIHH4s4sHH").unpack_from
    pack_v2 = struct.Struct(V2_HEAD).pack
    unpack_v2 = struct.Struct("!IHHQ8sBBH16s16sHH").unpack_from
    pad12 = bytes(12)
    zero_ident, zero_mac, zero64 = bytes(32), bytes(6), bytes(64)
    digest = hmac.digest

    outstanding = {}                 # token -> (entry, send_ns, counted)
    st = dict(sent=0, answered=0, found_ok=0, wrong=0, notfound=0, bad=0, lost=0, late=0,
              warmup_sent=0, send_errors=0)
    errors = []
    rtts = []
    total_sent = 0
    now = time.monotonic_ns
    t0 = now()
    t_start = t0 + int(a.warmup * 1e9)
    t_stop = t_start + int(a.seconds * 1e9)
    timeout_ns = int(a.timeout * 1e9)
    capped = False
    window_answered = 0

    def send_one():
        nonlocal counter, total_sent
        i = rng.randrange(a.entries)
        e = lay.entry(i)
        counter += 1
        if v2:
            token = struct.pack("!Q", (nonce_base + counter) & 0xFFFFFFFFFFFFFFFF)
            head = pack_v2(V2_MAGIC, 2, QUERY, int(time.time()), token, 4, 0, 0,
                           e[4].to_bytes(4, "big") + pad12, e[6].to_bytes(4, "big") + pad12,
                           e[5], e[7], zero64)
            pkt = head + digest(key, head, "sha256")
        else:
            cookie = (nonce_base + counter) & 0xFFFFFFFF
            token = cookie
            pkt = pack_legacy(LEGACY_MAGIC, cookie, secret, 0x0402, QUERY,
                              e[4].to_bytes(4, "big"), e[6].to_bytes(4, "big"), e[5], e[7],
                              zero_ident, zero_mac)
        t = now()
        try:
            sock.send(pkt)
        except (BlockingIOError, ConnectionRefusedError) as ex:
            st["send_errors"] += 1
            if len(errors) < 5:
                errors.append("send: %s" % ex)
            return False
        counted = t_start <= t < t_stop
        outstanding[token] = (e, t, counted)
        total_sent += 1
        if counted:
            st["sent"] += 1
        elif t < t_start:
            st["warmup_sent"] += 1
        return True

    def check(data):
        nonlocal window_answered
        if v2:
            if len(data) != 160 or data[:4] != b"RPH2":
                return "bad", None
            _, _, flags, ts, token, fam, _, _, s, d, sp, dp = unpack_v2(data, 0)
            if token not in outstanding:
                return "late", None
            if not hmac.compare_digest(digest(key, data[:128], "sha256"), data[128:]):
                return "bad", token
            s, d = s[:4], d[:4]
        else:
            if len(data) != 66:
                return "bad", None
            magic, token, _, ver, flags, s, d, sp, dp = unpack_legacy(data, 0)
            if token not in outstanding:
                return "late", None
            if magic != LEGACY_MAGIC or ver != 0x0402:
                return "bad", token
        if flags == NOTFOUND:
            return "notfound", token
        if flags != FOUND:
            return "bad", token
        e = outstanding[token][0]
        if (int.from_bytes(s, "big"), sp, int.from_bytes(d, "big"), dp) != (e[0], e[1], e[2], e[3]):
            return "wrong", token
        return "found_ok", token

    cpu0, wall0 = os.times(), now()
    for _ in range(a.inflight):
        send_one()
    next_sweep = now() + 50_000_000
    sending = True
    while True:
        t = now()
        if sending and (t >= t_stop or (a.max_queries and total_sent >= a.max_queries)):
            sending = False
            if t < t_stop:
                capped = True
                t_stop = t
            drain_until = t + timeout_ns
        if not sending and (not outstanding or t >= drain_until):
            break
        try:
            data = sock.recv(2048)
        except BlockingIOError:
            poller.poll(0.01)
            data = None
        except ConnectionRefusedError as ex:      # ICMP port unreachable: helper not there
            st["send_errors"] += 1
            if len(errors) < 5:
                errors.append("recv: %s" % ex)
            time.sleep(0.01)
            data = None
        if data is not None:
            t = now()
            kind, token = check(data)
            if token is not None:
                e, ts, counted = outstanding.pop(token)
                if counted:
                    st["answered"] += 1
                    st[kind] += 1
                    if kind == "found_ok":
                        rtts.append(t - ts)
                    elif len(errors) < 5:
                        errors.append("%s: entry %s" % (kind, ".".join(map(str, e[4:6]))))
                    if t < t_stop:
                        window_answered += 1
                elif kind != "found_ok":
                    st[kind] += 1
            else:
                st[kind] += 1
            if sending:
                send_one()
        if t >= next_sweep:
            next_sweep = t + 50_000_000
            for token in [k for k, v in outstanding.items() if t - v[1] > timeout_ns]:
                e, ts, counted = outstanding.pop(token)
                st["lost"] += 1
                if sending:
                    send_one()
    for token, (e, ts, counted) in outstanding.items():
        st["lost"] += 1
    cpu1, wall1 = os.times(), now()
    cpu_s = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
    window = (t_stop - t_start) / 1e9      # <= 0 only when --max-queries ran out during the warm-up
    rtts.sort()
    us = lambda v: None if v is None else round(v / 1000.0, 1)
    res = dict(
        proto="v2" if v2 else "0x0402", helper="%s:%d" % (a.helper, a.port), entries=a.entries,
        inflight=a.inflight, window_s=round(max(0.0, window), 3), capped=capped,
        rate=round(window_answered / window, 1) if window > 0 else 0.0,
        rtt_p50_us=us(pct(rtts, 0.50)), rtt_p90_us=us(pct(rtts, 0.90)), rtt_p99_us=us(pct(rtts, 0.99)),
        rtt_max_us=us(rtts[-1] if rtts else None), total_sent=total_sent,
        client_cpu_s=round(cpu_s, 2), client_cpu_pct=round(100.0 * cpu_s / max(1e-9, (wall1 - wall0) / 1e9)),
        errors=errors, **st)
    res["ok"] = (st["found_ok"] == st["answered"] and st["answered"] > 0 and st["lost"] == 0
                 and st["bad"] == 0 and st["send_errors"] == 0)
    print(json.dumps(res), flush=True)
    return 0 if res["ok"] else 1


def main():
    ap = argparse.ArgumentParser(description="smtpgate-helper load generator (see the module docstring)")
    sub = ap.add_subparsers(dest="cmd", required=True)
    for p in (sub.add_parser("entries"), sub.add_parser("run")):
        p.add_argument("--client-base", default="10.77.128.0", help="first made-up client address")
        p.add_argument("--dest", default="10.77.3.25:25", help="real destination of every entry")
        p.add_argument("--proxy", default="10.77.2.10:9199", help="proxy address:port (reply source)")
        p.add_argument("--snat-base", default="10.77.2.1", help="router's SNAT address (+1 per 64,000 entries)")
    e = sub.choices["entries"]
    e.add_argument("--first", type=int, default=0)
    e.add_argument("--count", type=int, required=True, help="entries 0 .. COUNT-1 exist afterwards")
    e.add_argument("--ttl", type=int, default=1800, help="conntrack timeout of the entries, seconds")
    r = sub.choices["run"]
    r.add_argument("helper", help="the helper's IPv4 address")
    r.add_argument("--port", type=int, default=114)
    r.add_argument("--entries", type=int, required=True, help="query entries chosen among 0 .. N-1")
    g = r.add_mutually_exclusive_group(required=True)
    g.add_argument("--key", help="v2 key file")
    g.add_argument("--legacy-secret", type=int, help="0x0402 secret")
    r.add_argument("--inflight", type=int, default=64, help="queries kept outstanding (W)")
    r.add_argument("--seconds", type=float, default=5.0, help="measured window (T)")
    r.add_argument("--warmup", type=float, default=0.5, help="unmeasured load before the window")
    r.add_argument("--max-queries", type=int, default=0,
                   help="stop sending after this many queries, warm-up included (0: no cap)")
    r.add_argument("--timeout", type=float, default=1.0, help="a query unanswered this long is lost")
    r.add_argument("--seed", type=int, default=None)
    a = ap.parse_args()
    if a.cmd == "entries":
        return cmd_entries(a)
    if a.entries < 1 or a.inflight < 1 or a.seconds <= 0:
        ap.error("--entries, --inflight and --seconds must be positive")
    return cmd_run(a)


if __name__ == "__main__":
    sys.exit(main())
