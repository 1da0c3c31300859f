#!/usr/bin/env python3
"""SMTPGate DNSBL benchmark driver (stdlib only); started by bench/run.sh, which owns the smtp-sink, the
slow DNS responder (bench/slow_dns.py, every answer DELAY ms late) and three smtpgate instances with the
same configuration (mode fixed -> the sink), all on 127.0.0.1:

  off     no dnsbl;
  cached  dnsbl cached1,cached2,cached3.bench.example: NXDOMAIN with SOA TTL / MINIMUM 300, so smtpgate's
          resolver keeps "127.0.0.1 is not listed" and only the first session of each zone asks;
  fresh   dnsbl fresh1,fresh2,fresh3.bench.example: the same with TTL 0, never cached: every session asks
          all three zones and its greeting waits for the answers;
  the two with dnsbl have dns_server 127.0.0.1@PORT (slow_dns.py) and timeout_dns 5.

This script only runs clients:

  * bench.py's main workload (its WORKLOADS[0], "sessions": smtp-source, 32 parallel sessions, 3,000
    messages of 2 KB, one recipient and one session each; --messages makes it smaller) through each
    smtpgate, after a warm-up, interleaved with the order rotated each repetition, REPEAT times; every run
    checked as bench.py checks its own (smtp-source exit 0 and silent, the sink's message counter
    advanced by exactly the messages sent, every server still running);
  * around every run the DNS server's counters (SIGUSR1 -> its --stats file) give the queries that run
    made per zone; then --greeting sequential sessions through each smtpgate time connect -> 220
    (one session at a time, so no two identical lookups are ever in flight together);
  * every bench client is 127.0.0.1, so all sessions ask the same three names, and libunbound (smtpgate's
    resolver) answers a question that is already in flight from that one upstream query (its mesh
    joins identical requests): with 32 sessions in parallel the fresh instance sends one query per zone
    per DELAY window or so, not one per session.  Hence two checks for it: one query per zone per
    session, exactly (+-2%), in the sequential greeting sessions; and in the parallel runs at least
    BUSY_FLOOR of the back-to-back maximum (run seconds / DELAY) per zone and at most one per session
    (a cache would leave ~0);
  * sanity checks that fail the run (the figures would measure nothing otherwise): those two, the cached
    one asked each zone at least once and a handful of times in all (once per 300 s TTL), nothing asked
    during the off instance's runs, the DNS server dropped and failed nothing, and no smtpgate log has a
    dnsbl_error or reject line;
  * prints T_off, T_cached, T_fresh (medians), session rates, rate_cached / rate_off and
    rate_fresh / rate_off against the 0.90 target (met / NOT MET, informational), paired per-repetition
    ratios, each smtpgate's CPU seconds per run, the queries per run and the greeting latencies.

Exit status: 0 when every run worked and the sanity checks hold (whatever the figures say), 1 otherwise.
"""
import argparse
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import time

from bench import WARMUP, WARMUP_MSGS, WORKLOADS, alive, sink_messages, wait_sink
from lab import cpu_seconds
from util import Terminated, log, log_events, on_term

RATE_TARGET = 0.90          # rate_X / rate_off
QUERY_TOLERANCE = 0.10      # fresh, parallel runs: at most (1 + this) queries per session per zone
GREETING_TOLERANCE = 0.02   # fresh, sequential sessions: queries per session per zone within 1 +- this
BUSY_FLOOR = 0.20           # fresh, parallel runs: queries per zone >= this x run seconds / DELAY
NOISY_SPREAD = 1.3
WATCHED = ("dnsbl_error", "reject", "connect_failed", "lookup_error", "lookup_failed", "drop")
MUST_BE_ZERO = ("dnsbl_error", "reject")
NAMES = ("off", "cached", "fresh")
SESS_RE = re.compile(rb"sess=(\d+) ")


def sink_sessions(path):
    """Last value of smtp-sink's running 'sess=N' counter (0 if none yet)."""
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        f.seek(max(0, size - 512))
        tail = f.read()
    found = SESS_RE.findall(tail)
    return int(found[-1]) if found else 0


def pct(values, q):
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


class DNSStats:
    """The slow DNS server's counters, fresh for every call: SIGUSR1, then wait for its `seq` to move."""

    def __init__(self, pid, path):
        self.pid, self.path, self.seq = pid, path, 0

    def read(self):
        try:
            with open(self.path) as f:
                return json.loads(f.read())
        except (OSError, ValueError):
            return None

    def snapshot(self, secs=5.0):
        os.kill(self.pid, signal.SIGUSR1)
        deadline = time.monotonic() + secs
        while time.monotonic() < deadline:
            s = self.read()
            if s and s.get("seq", 0) > self.seq:
                self.seq = s["seq"]
                return s
            time.sleep(0.01)
        raise RuntimeError("slow_dns.py (pid %d) did not write its counters to %s within %.0fs"
                           % (self.pid, self.path, secs))


def zone_delta(before, after, zones):
    """{zone: queries between two snapshots} for ZONES, and the total for every other zone."""
    b, a = before.get("zones", {}), after.get("zones", {})
    mine = {z: a.get(z, 0) - b.get(z, 0) for z in zones}
    other = sum(v - b.get(z, 0) for z, v in a.items() if z not in zones)
    return mine, other


class DNSBLBench:
    def __init__(self, a):
        self.a = a
        self.gates = []                    # [(name, port, pid, log)] in --gate order
        for spec in a.gate:
            name, port, pid, path = spec.split(":", 3)
            self.gates.append((name, int(port), int(pid), path))
        self.zones = {"off": []}
        for spec in a.zones:
            name, zs = spec.split(":", 1)
            self.zones[name] = [z.strip().lower() for z in zs.split(",") if z.strip()]
        self.all_zones = sorted(z for zs in self.zones.values() for z in zs)
        self.dns = DNSStats(a.dns_pid, a.dns_stats)
        self.samples = {}                  # name -> [seconds]
        self.by_rep = {}                   # (name, rep) -> seconds
        self.cpu = {}                      # name -> [CPU seconds of that smtpgate per run]
        self.queries = {}                  # name -> [(sessions, {zone: queries}, queries for other zones)] per measured run
        self.warm_queries = {}             # name -> ({zone: queries}, other) of its warm-up
        self.greet = {}                    # name -> [seconds connect -> 220]
        self.greet_queries = {}            # name -> ({zone: queries}, other) of its greeting sessions
        self.first = self.last = None      # DNS counters before and after everything
        self.failures = []

    def fail(self, msg):
        self.failures.append(msg)
        log("FAILED: " + msg)

    def check_alive(self, label, name):
        for what, q in [("smtp-sink", self.a.sink_pid), ("slow_dns.py", self.a.dns_pid)] \
                + [("smtpgate " + g[0], g[2]) for g in self.gates]:
            if not alive(q):
                self.fail("%s via %s: %s (pid %d) is gone" % (label, name, what, q))
                return False
        return True

    def smtp_source(self, label, name, port, pid, sargs, expected):
        """(wall seconds, sink sessions) of one smtp-source run, or None on a failure."""
        cmd = [self.a.smtp_source] + sargs + ["127.0.0.1:%d" % port]
        before = sink_messages(self.a.sink_out)
        sess0 = sink_sessions(self.a.sink_out)
        cpu0 = cpu_seconds(pid)
        t0 = time.monotonic()
        try:
            p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=self.a.run_timeout)
        except subprocess.TimeoutExpired:
            self.fail("%s via %s: smtp-source still running after %.0fs (killed)" % (label, name, self.a.run_timeout))
            return None
        elapsed = time.monotonic() - t0
        cpu1 = cpu_seconds(pid)
        out = (p.stdout + p.stderr).decode("utf-8", "replace").strip()
        if p.returncode != 0 or p.stderr.strip():
            self.fail("%s via %s: smtp-source exit %d: %s" % (label, name, p.returncode, out[-500:] or "(no output)"))
            return None
        got = wait_sink(self.a.sink_out, before, expected)
        if got != expected:
            self.fail("%s via %s: smtp-sink received %d messages, expected %d" % (label, name, got, expected))
            return None
        if not self.check_alive(label, name):
            return None
        if label == "measure" and cpu0 is not None and cpu1 is not None:
            self.cpu.setdefault(name, []).append(cpu1 - cpu0)
        return elapsed, sink_sessions(self.a.sink_out) - sess0

    def greeting(self, name, port):
        """--greeting sessions one after the other: seconds from connect() to the whole 220 line, then QUIT."""
        times = []
        for i in range(self.a.greeting):
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
                    t0 = time.monotonic()
                    buf = b""
                    while b"\n" not in buf and len(buf) < 4096:
                        chunk = s.recv(4096)
                        if not chunk:
                            break
                        buf += chunk
                    t1 = time.monotonic()
                    if not buf.startswith(b"220"):
                        self.fail("greeting %d via %s: no 220 greeting: %r" % (i + 1, name, buf[:200]))
                        return times
                    s.sendall(b"QUIT\r\n")
                    tail = b""
                    while b"\n" not in tail and len(tail) < 4096:
                        chunk = s.recv(4096)
                        if not chunk:
                            break
                        tail += chunk
                    if not tail.startswith(b"221"):
                        self.fail("greeting %d via %s: QUIT answered %r" % (i + 1, name, tail[:200]))
                        return times
            except OSError as e:
                self.fail("greeting %d via %s: %s" % (i + 1, name, e))
                return times
            times.append(t1 - t0)
        return times

    def run(self):
        wname, sargs, _, _ = WORKLOADS[0]
        sargs = list(sargs)
        msgs = self.a.messages
        sargs[sargs.index("-m") + 1] = str(msgs)
        self.sargs = sargs
        self.first = self.dns.snapshot()
        for name, port, pid, _ in self.gates:
            log("dnsbl warm-up via %s (port %d)" % (name, port))
            s0 = self.dns.snapshot()
            if self.smtp_source("warm-up", name, port, pid, WARMUP, WARMUP_MSGS) is None:
                return
            self.warm_queries[name] = zone_delta(s0, self.dns.snapshot(), self.zones[name])
        n = len(self.gates)
        for rep in range(self.a.repeat):
            for name, port, pid, _ in [self.gates[(i + rep) % n] for i in range(n)]:
                s0 = self.dns.snapshot()
                r = self.smtp_source("measure", name, port, pid, sargs, msgs)
                s1 = self.dns.snapshot()
                if r is None:
                    continue
                secs, sessions = r
                mine, other = zone_delta(s0, s1, self.zones[name])
                self.queries.setdefault(name, []).append((sessions, mine, other, secs))
                self.samples.setdefault(name, []).append(secs)
                self.by_rep[(name, rep)] = secs
                log("dnsbl rep %d/%d %-8s %-6s %.3fs (%.0f sessions/s), %d sessions, DNS queries %d"
                    % (rep + 1, self.a.repeat, wname, name, secs, msgs / secs, sessions, sum(mine.values()) + other))
        if self.a.greeting:
            for name, port, _, _ in self.gates:
                log("dnsbl greeting latency via %s: %d sessions one at a time" % (name, self.a.greeting))
                s0 = self.dns.snapshot()
                self.greet[name] = self.greeting(name, port)
                self.greet_queries[name] = zone_delta(s0, self.dns.snapshot(), self.zones[name])
        self.last = self.dns.snapshot()

    # ------------------------------------------------------------------ checks
    def check_queries(self, elapsed):
        """The sanity checks on what the DNS server was asked (see the module's docstring)."""
        notes = []
        for name in NAMES:
            zones = self.zones[name]
            runs = self.queries.get(name, [])
            for i, (sessions, mine, other, secs) in enumerate(runs):
                if other > 3:
                    self.fail("dnsbl %s run %d: %d queries for zones that are not its own (%s) while it ran"
                              % (name, i + 1, other, ",".join(zones) or "none"))
                if name == "off" and sum(mine.values()):
                    self.fail("dnsbl off run %d: %d DNS queries with no dnsbl configured" % (i + 1, sum(mine.values())))
                if sessions != self.a.messages:
                    self.fail("dnsbl %s run %d: the sink counted %d sessions, expected %d (one per message)"
                              % (name, i + 1, sessions, self.a.messages))
                if name == "fresh":
                    floor = BUSY_FLOOR * min(sessions, secs / max(self.a.delay_ms / 1000.0, 0.001))
                    for z in zones:
                        if mine[z] > sessions * (1 + QUERY_TOLERANCE):
                            self.fail("dnsbl fresh run %d: zone %s asked %d times for %d sessions: more than one"
                                      " query per session" % (i + 1, z, mine[z], sessions))
                        elif mine[z] < floor:
                            self.fail("dnsbl fresh run %d: zone %s asked only %d times in %.2fs (at least %.0f expected:"
                                      " %.0f%% of one %g ms query after another): its answers were cached, the figure"
                                      " measures nothing" % (i + 1, z, mine[z], secs, floor, 100 * BUSY_FLOOR,
                                                             self.a.delay_ms))
        if not (self.first and self.last):
            return notes
        total, _ = zone_delta(self.first, self.last, self.all_zones)
        # cached: every zone asked at least once (dnsbl was on), and once per zone per TTL (300 s) or so after
        limit = 2 + int(elapsed // 300)
        for z in self.zones.get("cached", []):
            if total[z] < 1:
                self.fail("dnsbl cached: zone %s was never asked (is dnsbl on?)" % z)
            elif total[z] > limit:
                self.fail("dnsbl cached: zone %s asked %d times in %.0fs with a 300 s negative TTL (at most %d"
                          " expected): the answers were not cached" % (z, total[z], elapsed, limit))
        for name in NAMES:
            g, n = self.greet_queries.get(name), len(self.greet.get(name, []))
            if not (g and n):
                continue
            for z in self.zones[name]:
                if name == "fresh":
                    off_by = abs(g[0][z] - n) > max(1, GREETING_TOLERANCE * n)
                else:                  # cached: answered from the cache (one query if its TTL ran out meanwhile)
                    off_by = g[0][z] > 1
                if off_by:
                    self.fail("dnsbl %s greeting: zone %s asked %d times for %d sequential sessions (want %s)"
                              % (name, z, g[0][z], n, "one per session" if name == "fresh" else "none: cached"))
            if g[1]:
                self.fail("dnsbl %s greeting: %d queries for zones that are not its own" % (name, g[1]))
        for k in ("dropped", "send_errors", "malformed", "refused"):
            d = self.last.get(k, 0) - self.first.get(k, 0)
            if d:
                self.fail("slow_dns.py: %d %s during the runs" % (d, k.replace("_", " ")))
        if self.last.get("pending", 0):
            notes.append("slow_dns.py still had %d replies pending at the end" % self.last["pending"])
        return notes

    def check_logs(self):
        result = {}
        for name, _, _, path in self.gates:
            events, lines = log_events(path, WATCHED)
            result[name] = (events, lines)
            for ev in MUST_BE_ZERO:
                if events.get(ev, 0):
                    self.fail("smtpgate %s: %d %s lines in its log (the clean client must be relayed, every zone"
                              " answered): %s" % (name, events[ev], ev,
                                                  "; ".join(l for l in lines if (" %s " % ev) in l or ev in l)[:500]))
            if events.get("open", 0) < 1:
                self.fail("smtpgate %s: no open line in its log" % name)
        return result

    # ------------------------------------------------------------------ report
    def report(self, started, events, notes):
        a = self.a
        wname = WORKLOADS[0][0]
        msgs = a.messages
        elapsed = time.monotonic() - started
        med = {k: statistics.median(v) for k, v in self.samples.items()}
        out = []
        w = out.append
        w("")
        w("DNSBL: bench.py's '%s' workload, smtp-source %s, through three smtpgate" % (wname, " ".join(self.sargs)))
        w("=" * 100)
        w("off:    no dnsbl")
        w("cached: dnsbl %s (NXDOMAIN, SOA TTL/MINIMUM 300: asked once, then cached)" % ",".join(self.zones["cached"]))
        w("fresh:  dnsbl %s (NXDOMAIN, TTL 0: every session asks all three)" % ",".join(self.zones["fresh"]))
        w("        both with dns_server 127.0.0.1@%s (bench/slow_dns.py, every answer %s ms late), timeout_dns 5;"
          % (a.dns_port, "%g" % a.delay_ms))
        w("        all the same configuration otherwise, mode fixed -> one smtp-sink, all on 127.0.0.1 (one client)")
        w("smtpgate: %s" % a.gate_version)
        w("repeat %d (median reported), runs interleaved, order rotated; %d sessions per run; elapsed %.0fs"
          % (a.repeat, msgs, elapsed))
        w("")
        hdr = "   %-9s %-36s %9s %11s %9s %12s   %s" % (
            "figure", "what", "median", "sessions/s", "gate CPU", "DNS q/run", "samples (s)")
        w(hdr)
        w("   " + "-" * (len(hdr) - 3))
        for fig, name, what in (("T_off", "off", "no dnsbl"),
                                ("T_cached", "cached", "3 zones, answers cached"),
                                ("T_fresh", "fresh", "3 zones, %g ms each, never cached" % a.delay_ms)):
            v = med.get(name)
            c = self.cpu.get(name)
            q = [sum(m.values()) + o for _, m, o, _ in self.queries.get(name, [])]
            w("   %-9s %-36s %9s %11s %9s %12s   %s" % (
                fig, what, "%.3fs" % v if v else "FAILED", "%.0f" % (msgs / v) if v else "-",
                "%.2fs" % statistics.median(c) if c else "-",
                "%.0f" % statistics.median(q) if q else "-",
                " ".join("%.3f" % x for x in self.samples.get(name, [])) or "none"))
        w("")
        off = med.get("off")
        for name in ("cached", "fresh"):
            v = med.get(name)
            label = "rate_%s / rate_off" % name
            if not (v and off):
                w("   %-22s n/a (no data)" % label)
                continue
            ratio = off / v            # (msgs / v) / (msgs / off)
            paired = [self.by_rep[("off", r)] / self.by_rep[(name, r)] for r in range(a.repeat)
                      if (name, r) in self.by_rep and ("off", r) in self.by_rep]
            w("   %-22s = %.3f  (target >= %.2f): %-7s  paired per repetition: median %.3f, range %.3f-%.3f"
              % (label, ratio, RATE_TARGET, "met" if ratio >= RATE_TARGET else "NOT MET",
                 statistics.median(paired) if paired else float("nan"),
                 min(paired) if paired else float("nan"), max(paired) if paired else float("nan")))
            con, coff = self.cpu.get(name), self.cpu.get("off")
            if con and coff:
                w("   %-22s   smtpgate CPU per run %.2fs vs off %.2fs: %+.0f us per session for dnsbl"
                  % ("", statistics.median(con), statistics.median(coff),
                     1e6 * (statistics.median(con) - statistics.median(coff)) / msgs))
        w("")
        w("   DNS queries (slow_dns.py counters, per zone):")
        for name in NAMES:
            zones = self.zones[name]
            runs = self.queries.get(name, [])
            if not zones:
                w("     %-6s %s" % (name, "measured runs: %s queries (no dnsbl)"
                                    % ", ".join(str(sum(m.values()) + o) for _, m, o, _ in runs) or "-"))
                continue
            wq = self.warm_queries.get(name)
            per_run = "; ".join("%d sessions: %s" % (s, " ".join(str(m[z]) for z in zones)) for s, m, _, _ in runs)
            w("     %-6s warm-up (%d sessions) %s; measured runs (per zone) %s"
              % (name, WARMUP_MSGS, " ".join(str(wq[0][z]) for z in zones) if wq else "-", per_run or "-"))
            if name == "fresh" and runs:
                ratios = [sum(m.values()) / (len(zones) * s) for s, m, _, _ in runs if s]
                busy = [sum(m.values()) / len(zones) * a.delay_ms / 1000.0 / t for _, m, _, t in runs if t]
                w("     %-6s queries / (%d x sessions) per run: %s -- libunbound joins a question already in flight"
                  % ("", len(zones), " ".join("%.3f" % r for r in ratios)))
                w("     %-6s (one client, one name per zone), so parallel sessions share one query per %g ms window;"
                  % ("", a.delay_ms))
                w("     %-6s queries x %g ms / run time per zone: %s (a lookup of each zone in flight that share of"
                  " the run;" % ("", a.delay_ms, " ".join("%.2f" % b for b in busy)))
                w("     %-6s sanity check >= %.2f, and <= 1 query per session)" % ("", BUSY_FLOOR))
        if self.first and self.last:
            total, _ = zone_delta(self.first, self.last, self.all_zones)
            w("     total during the section: %s; %d queries, most replies pending at once %d, dropped %d"
              % (", ".join("%s %d" % (z, total[z]) for z in self.all_zones), self.last.get("queries", 0)
                 - self.first.get("queries", 0), self.last.get("max_pending", 0),
                 self.last.get("dropped", 0) - self.first.get("dropped", 0)))
        if self.greet:
            w("")
            w("   greeting latency, connect -> 220, %d sessions one at a time (ms):" % a.greeting)
            for name in NAMES:
                t = self.greet.get(name)
                if not t:
                    w("     %-6s FAILED" % name)
                    continue
                q = self.greet_queries.get(name)
                nq = (sum(q[0].values()) + q[1]) if q else -1
                w("     %-6s p50 %6.2f  p90 %6.2f  max %6.2f   DNS queries %d%s"
                  % (name, 1000 * pct(t, 0.5), 1000 * pct(t, 0.9), 1000 * max(t), nq,
                     " (%d zones x %d sessions: one query per zone per session, sanity check +- %.0f%%)"
                     % (len(self.zones[name]), len(t), 100 * GREETING_TOLERANCE) if name == "fresh" else ""))
        noisy = ["%s %.2f" % (m, max(v) / min(v)) for m, v in sorted(self.samples.items())
                 if len(v) > 1 and max(v) / min(v) > NOISY_SPREAD]
        if noisy:
            w("   note: samples spread (slowest / fastest) %s: the host was busy during some runs -- run again on a"
              % ", ".join(noisy))
            w("   quiet host (DNSBL_REPEAT=5 helps)")
        for n_ in notes:
            w("   note: " + n_)
        w("")
        for name, _, _, _ in self.gates:
            ev = events.get(name, ({}, []))[0]
            w("   smtpgate %-6s log: open %d, close %d, %s" % (
                name, ev.get("open", 0), ev.get("close", 0), ", ".join("%s %d" % (e, ev.get(e, 0)) for e in WATCHED)))
        for name in NAMES:
            for l in events.get(name, ({}, []))[1][:3]:
                w("     %s: %s" % (name, l[:160]))
        w("")
        if self.failures:
            w("DNSBL ERRORS (%d) - these figures are not valid:" % len(self.failures))
            for f in self.failures:
                w("  - " + f)
        else:
            w("DNSBL runs completed without tool errors; query counts and logs as expected (the target is informational).")
        print("\n".join(out), flush=True)


def main():
    ap = argparse.ArgumentParser(description="SMTPGate DNSBL benchmark driver (see bench/run.sh)")
    ap.add_argument("--gate", action="append", default=[], help="NAME:PORT:PID:LOGFILE for off, cached and fresh")
    ap.add_argument("--zones", action="append", default=[], help="NAME:ZONE,ZONE,... for cached and fresh")
    ap.add_argument("--sink-out", default="")
    ap.add_argument("--sink-pid", type=int, default=0)
    ap.add_argument("--dns-pid", type=int, required=True)
    ap.add_argument("--dns-stats", required=True, help="slow_dns.py's --stats file")
    ap.add_argument("--dns-port", type=int, default=0)
    ap.add_argument("--delay-ms", type=float, default=5.0)
    ap.add_argument("--messages", type=int, default=WORKLOADS[0][2], help="messages (= sessions) per run")
    ap.add_argument("--greeting", type=int, default=50, help="sequential sessions timed to the greeting (0: none)")
    ap.add_argument("--smtp-source", default="smtp-source")
    ap.add_argument("--gate-version", default="?")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--run-timeout", type=float, default=300.0)
    a = ap.parse_args()
    names = sorted(g.split(":", 1)[0] for g in a.gate)
    znames = sorted(z.split(":", 1)[0] for z in a.zones)
    if names != sorted(NAMES) or znames != ["cached", "fresh"] or not a.sink_out or not a.sink_pid:
        ap.error("--gate must be given once each for off, cached and fresh, --zones for cached and fresh,"
                 " with --sink-out and --sink-pid")
    if not 1 <= a.repeat <= 50 or not 1 <= a.messages <= 100000 or not 0 <= a.greeting <= 10000:
        ap.error("--repeat must be 1-50, --messages 1-100000, --greeting 0-10000")
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, on_term)
    started = time.monotonic()
    b = DNSBLBench(a)
    b.sargs = list(WORKLOADS[0][1])
    try:
        b.run()
    except (Terminated, KeyboardInterrupt) as e:
        b.fail("interrupted (%s)" % (e or "SIGINT"))
    except (RuntimeError, OSError) as e:
        b.fail(str(e))
    notes = b.check_queries(time.monotonic() - started)
    events = b.check_logs()
    b.report(started, events, notes)
    return 1 if b.failures else 0


if __name__ == "__main__":
    sys.exit(main())
