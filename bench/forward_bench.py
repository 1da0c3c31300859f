#!/usr/bin/env python3
"""SMTPGate forward benchmark driver (stdlib only; issue 11); started by bench/run.sh, which owns the processes,
all on 127.0.0.1: bench/tcp_pump.py (the server end), and three plain TCP relays in front of it, haproxy
(mode tcp), rinetd and smtpgate with one `[forward]` section (mode fixed, no SMTP listener).  This script only
runs clients (bench/tcp_pump.py's), against each relay and straight to the pump ("direct", the ceiling):

  * warm-up: a few hundred short sessions and a small bulk run through every target;
  * memory: --idle ping connections (connect, ping, answer) opened 250 at a time and held through each relay;
    its VmRSS before, while held and after they closed, and the resident set per held connection
    ((held - before) / N); run before the bulk runs, so their buffers are not in the "before" figure;
  * throughput, interleaved with the target order rotated every repetition, --repeat times (median):
      bulk up    --bulk-conns connections in parallel, each --bulk-mib MiB client -> pump, one way;
      bulk down  the same, pump -> client;
      sessions   --sessions short sessions (connect, a 30-byte ping, its 21-byte answer, close),
                 --inflight at a time over --clients forked client processes;
    each relay's CPU seconds per run (/proc/PID/stat);
  * every run checked: every connection completed and moved exactly what it should (the pump's upload count,
    the client's download count, every ping's echo), the relays and the pump still running; at the end
    smtpgate's log (forward lines) and rinetd's (its log file, as Debian's default config has one) have one
    line per connection made through each, all done-*-closed, and their bytes in / out totals are what the
    clients sent and received through it.
  * prints MB/s and sessions/s (medians), the ratios smtpgate/haproxy and smtpgate/rinetd against issue 11's
    targets (bulk >= 0.90 x haproxy and >= 1.00 x rinetd, session rate >= 1.00 x rinetd; met / NOT MET,
    informational), paired per-repetition ratios, samples, CPU per run and the memory figures.

Exit status: 0 when every run worked, whatever the figures say; 1 otherwise.
"""
import argparse
import re
import signal
import statistics
import sys
import time

import tcp_pump
from bench import summarize_log
from lab import cpu_seconds
from util import Terminated, alive, log, on_term, proc_status

RELAYS = ("haproxy", "rinetd", "smtpgate")
NAMES = ("direct",) + RELAYS
# (workload, target ratio smtpgate/haproxy or None, smtpgate/rinetd); higher is better for both figures
TARGETS = {"bulk up": (0.90, 1.00), "bulk down": (0.90, 1.00), "sessions": (None, 1.00)}
WARMUP_SESSIONS = 500
WARMUP_BULK = (2, 16 << 20)
PING_IN, PING_OUT = tcp_pump.HDR.size + 21, 21          # bytes a ping session moves each way
# one line per connection when it ends: smtpgate's forward line, rinetd's tab-separated log (it also writes an
# "opened" line when one starts: bytes 0 0, not counted)
LOG_RE = {"smtpgate": re.compile(rb" forward .*\bbytes_in=(\d+) bytes_out=(\d+) .*\bresult=(\S+)"),
          "rinetd": re.compile(rb"\t(\d+)\t(\d+)\t(\S+)\s*$")}
NOISY_SPREAD = 1.3


class ForwardBench:
    def __init__(self, a):
        self.a = a
        self.targets = []            # [(name, port, pid or None)]
        for spec in a.target:
            name, port, pid = spec.split(":")
            self.targets.append((name, int(port), int(pid) if pid else None))
        self.bulk_bytes = a.bulk_mib << 20
        self.workloads = [("bulk up", b"U"), ("bulk down", b"D"), ("sessions", None)]
        self.samples = {}            # (workload, name) -> [figure per run: MB/s or sessions/s]
        self.secs = {}               # (workload, name) -> [seconds]
        self.by_rep = {}             # (workload, name, rep) -> figure
        self.cpu = {}                # (workload, name) -> [relay CPU seconds per run]
        self.mem = {}                # name -> dict
        self.failures = []
        self.broken = set()
        # what went through each relay: connections and bytes each way, from the client's side
        self.expect = {n: {"conns": 0, "in": 0, "out": 0, "exact": True} for n in RELAYS}
        self.logs = {"smtpgate": a.gate_log, "rinetd": a.rinetd_log}

    def fail(self, msg):
        self.failures.append(msg)
        log("FAILED: " + msg)

    def check_alive(self, label, name):
        for what, q in [("tcp_pump.py", self.a.pump_pid)] + [(n, p) for n, _, p in self.targets if p]:
            if not alive(q):
                self.fail("%s via %s: %s (pid %d) is gone" % (label, name, what, q))
                return False
        return True

    def account(self, name, conns, b_in, b_out, exact=True):
        if name in self.expect:
            e = self.expect[name]
            e["conns"] += conns
            e["in"] += b_in
            e["out"] += b_out
            e["exact"] = e["exact"] and exact

    # ------------------------------------------------------------------ runs
    def run_bulk(self, label, name, port, pid, op, conns, length):
        cpu0 = cpu_seconds(pid) if pid else None
        r = tcp_pump.bulk(port, conns, length, op, self.a.run_timeout)
        cpu1 = cpu_seconds(pid) if pid else None
        hdr = tcp_pump.HDR.size
        if op == b"U":
            self.account(name, conns, conns * (hdr + length), conns * 8, r["ok"])
        else:
            self.account(name, conns, conns * hdr, conns * length, r["ok"])
        if not r["ok"]:
            self.fail("%s via %s (%d x %d bytes %s): %s" % (label, name, conns, length,
                      "up" if op == b"U" else "down", "; ".join(r["errors"]) or "failed"))
            return None
        if r["bytes"] != conns * length:
            self.fail("%s via %s: %d bytes arrived, %d sent" % (label, name, r["bytes"], conns * length))
            return None
        if not self.check_alive(label, name):
            return None
        return r["seconds"], (cpu1 - cpu0 if cpu0 is not None and cpu1 is not None else None)

    def run_sessions(self, label, name, port, pid, count):
        cpu0 = cpu_seconds(pid) if pid else None
        r = tcp_pump.sessions(port, count, self.a.inflight, self.a.clients, self.a.run_timeout)
        cpu1 = cpu_seconds(pid) if pid else None
        self.account(name, count, count * PING_IN, count * PING_OUT, r["ok"])
        if not r["ok"]:
            self.fail("%s via %s: %d of %d sessions completed (%d failed): %s"
                      % (label, name, r["done"], count, r["failed"], "; ".join(r["errors"]) or "?"))
            return None
        if not self.check_alive(label, name):
            return None
        return r["seconds"], (cpu1 - cpu0 if cpu0 is not None and cpu1 is not None else None)

    def warm_up(self):
        for name, port, pid in self.targets:
            log("warm-up via %s (port %d)" % (name, port))
            if self.run_sessions("warm-up", name, port, pid, WARMUP_SESSIONS) is None \
                    or self.run_bulk("warm-up", name, port, pid, b"U", *WARMUP_BULK) is None \
                    or self.run_bulk("warm-up", name, port, pid, b"D", *WARMUP_BULK) is None:
                self.broken.add(name)

    def run_idle(self, name, port, pid):
        n = self.a.idle
        log("memory: holding %d idle connections via %s" % (n, name))
        res = {"start": self.start_status.get(name, {}), "before": proc_status(pid)}
        p, ramp = tcp_pump.hold(port, n, 250, self.a.idle_timeout)
        res["ramp"] = ramp
        res["established"] = p.done
        time.sleep(1.0)
        res["still_open"] = tcp_pump.still_open(p.answered)
        res["held"] = proc_status(pid)
        if name == "smtpgate" and self.a.gate_config:
            self.status_under_load(port, p.done)
        for s in p.answered:
            s.close()
        self.account(name, p.done + p.error_count, (p.done + p.error_count) * PING_IN, p.done * PING_OUT,
                     not p.error_count)
        time.sleep(1.5)
        res["after"] = proc_status(pid)
        res["ok"] = (not p.error_count and p.done == n and res["still_open"] == n
                     and "VmRSS" in res["held"] and "VmRSS" in res["before"])
        if not res["ok"]:
            self.fail("memory via %s: %d/%d connections answered, %d still open; errors: %s"
                      % (name, p.done, n, res["still_open"], "; ".join(p.errors) or "-"))
        self.check_alive("memory", name)
        self.mem[name] = res

    def status_under_load(self, port, held):
        """Issue 12: `smtpgate status` with the idle connections open (each session read on its own loop),
        and what it costs the relay: short pings through the forward, one after another, while status
        requests run back to back, against the same pings with none running."""
        import json
        import subprocess
        import threading

        def pings(seconds):
            rtts, tried, end = [], 0, time.monotonic() + seconds
            while time.monotonic() < end:
                t = time.monotonic()
                tried += 1
                if tcp_pump.one_ping(port):
                    rtts.append(time.monotonic() - t)
            # the relay logs each of them: the log check counts them with the rest
            self.account("smtpgate", tried, tried * tcp_pump.ONE_PING_IN, len(rtts) * tcp_pump.ONE_PING_OUT,
                         tried == len(rtts))
            return rtts

        quiet = pings(2.0)
        times, listed, busy = [], [], []
        runner = threading.Thread(target=lambda: busy.extend(pings(4.0)))
        runner.start()
        t_end = time.monotonic() + 4.0
        while time.monotonic() < t_end and len(times) < 50:
            t = time.monotonic()
            r = subprocess.run([self.a.gate_bin, "status", "--json", "--config", self.a.gate_config],
                               capture_output=True, timeout=60)
            times.append(time.monotonic() - t)
            if r.returncode != 0:
                self.fail("smtpgate status failed: %s" % r.stderr.decode(errors="replace")[:200])
                break
            listed.append(len(json.loads(r.stdout)["sessions"]))
        runner.join(30)
        self.status = {"held": held, "times": times, "listed": listed, "quiet": quiet, "busy": busy}
        if listed and min(listed) < held:
            self.fail("smtpgate status listed %d sessions with %d held" % (min(listed), held))

    def run(self):
        self.start_status = {n: proc_status(p) for n, _, p in self.targets if p}
        self.warm_up()
        if self.a.idle:
            for name, port, pid in self.targets:
                if pid and name not in self.broken:
                    self.run_idle(name, port, pid)
        n = len(self.targets)
        for rep in range(self.a.repeat):
            order = [self.targets[(i + rep) % n] for i in range(n)]
            for wname, op in self.workloads:
                for name, port, pid in order:
                    if name in self.broken:
                        continue
                    if op is None:
                        r = self.run_sessions("measure", name, port, pid, self.a.sessions)
                        fig = (self.a.sessions / r[0]) if r else None
                    else:
                        r = self.run_bulk("measure", name, port, pid, op, self.a.bulk_conns, self.bulk_bytes)
                        fig = (self.a.bulk_conns * self.bulk_bytes / r[0] / 1e6) if r else None
                    if r is None:
                        continue
                    self.samples.setdefault((wname, name), []).append(fig)
                    self.secs.setdefault((wname, name), []).append(r[0])
                    self.by_rep[(wname, name, rep)] = fig
                    if r[1] is not None:
                        self.cpu.setdefault((wname, name), []).append(r[1])
                    log("rep %d/%d %-9s %-8s %9.1f %s  (%.3fs)" % (rep + 1, self.a.repeat, wname, name, fig,
                        "sess/s" if op is None else "MB/s", r[0]))

    # ------------------------------------------------------------------ the relays' logs
    def read_log(self, name):
        lines, b_in, b_out, results = 0, 0, 0, {}
        try:
            with open(self.logs[name], "rb") as f:
                for raw in f:
                    m = LOG_RE[name].search(raw)
                    if m and m.group(3) != b"opened":
                        lines += 1
                        b_in += int(m.group(1))
                        b_out += int(m.group(2))
                        r = m.group(3).decode("ascii", "replace")
                        results[r] = results.get(r, 0) + 1
        except OSError:
            pass
        return lines, b_in, b_out, results

    def check_log(self, name):
        """One done-* line per connection made through NAME and the bytes the clients sent and received."""
        if not self.logs.get(name) or not any(n == name for n, _, _ in self.targets):
            return ""
        e = self.expect[name]
        deadline = time.monotonic() + 15       # the last connections' lines come when they end
        got = self.read_log(name)
        while got[0] < e["conns"] and time.monotonic() < deadline:
            time.sleep(0.2)
            got = self.read_log(name)
        lines, b_in, b_out, results = got
        bad = {r: c for r, c in results.items() if not r.startswith("done-")}
        if bad:
            self.fail("%s log: lines with result %s" % (name, ", ".join("%s=%d" % kv for kv in sorted(bad.items()))))
        if e["exact"]:
            if lines != e["conns"]:
                self.fail("%s log: %d connection lines, %d connections were made through it" % (name, lines, e["conns"]))
            if (b_in, b_out) != (e["in"], e["out"]):
                self.fail("%s log: %d bytes in / %d out in all, the clients sent %d / received %d"
                          % (name, b_in, b_out, e["in"], e["out"]))
        return "%d connections (%s), bytes in %d, out %d%s" % (
            lines, " ".join("%s=%d" % kv for kv in sorted(results.items())) or "-", b_in, b_out,
            ", as the clients counted" if e["exact"] and not self.failures else
            " (not compared: a run through it failed)" if not e["exact"] else "")

    # ------------------------------------------------------------------ report
    def report(self, started, log_checks):
        a = self.a
        med = {k: statistics.median(v) for k, v in self.samples.items()}
        out = []
        w = out.append
        w("")
        w("Forward: plain TCP relays (issue 11) -- smtpgate [forward] vs haproxy (mode tcp) vs rinetd")
        w("==========================================================================================")
        w("date %s   cpus %d   repeat %d (median reported)   elapsed %.0fs"
          % (time.strftime("%Y-%m-%dT%H:%M:%S%z"), __import__("os").cpu_count() or 0, a.repeat,
             time.monotonic() - started))
        w("smtpgate %s, one [forward] section (mode fixed, max_connections %s, max_per_host %s), its log: one line per"
          " connection" % (a.gate_version, a.gate_maxconn, a.gate_maxconn))
        w("haproxy %s, nbthread %s, maxconn %s, no log; rinetd %s (one process), its log file as Debian's"
          " /etc/rinetd.conf has it: one line per connection, one when it opens"
          % (a.haproxy_version, a.haproxy_threads, a.haproxy_maxconn, a.rinetd_version))
        w("server end: bench/tcp_pump.py, %s forked workers; all on 127.0.0.1; ports %s"
          % (a.pump_workers, ", ".join("%s=%d" % (n, p) for n, p, _ in self.targets)))
        w("bulk: %d connections x %d MiB each run (one way; up = client -> server); sessions: %d per run, %d in flight,"
          " %d client processes (connect, 30 bytes, 21-byte answer, close)"
          % (a.bulk_conns, a.bulk_mib, a.sessions, a.inflight, a.clients))
        w("")
        hdr = "%-10s %-7s %9s %9s %9s %9s   %12s %11s   %s" % (
            "workload", "unit", "direct", "haproxy", "rinetd", "smtpgate", "gate/haproxy", "gate/rinetd", "targets")
        w(hdr)
        w("-" * len(hdr))
        for wname, op in self.workloads:
            cells = []
            for n in NAMES:
                v = med.get((wname, n))
                cells.append("%9.0f" % v if v is not None else "%9s" % ("FAILED" if n in dict((t[0], 1) for t in self.targets) else "-"))
            g, h, r = (med.get((wname, n)) for n in ("smtpgate", "haproxy", "rinetd"))
            gh = "%12.3f" % (g / h) if g and h else "%12s" % "n/a"
            gr = "%11.3f" % (g / r) if g and r else "%11s" % "n/a"
            th, tr = TARGETS[wname]
            verdicts = []
            if th is not None:
                verdicts.append(">= %.2f x haproxy %s" % (th, ("met" if g / h >= th else "NOT MET") if g and h else "n/a"))
            verdicts.append(">= %.2f x rinetd %s" % (tr, ("met" if g / r >= tr else "NOT MET") if g and r else "n/a"))
            w("%-10s %-7s %s   %s %s   %s" % (wname, "sess/s" if op is None else "MB/s", " ".join(cells), gh, gr,
                                             ", ".join(verdicts)))
        w("")
        w("Paired ratios (median over repetitions of the per-repetition ratio, range)")
        for wname, _ in self.workloads:
            parts = []
            for num, den in (("smtpgate", "haproxy"), ("smtpgate", "rinetd"), ("haproxy", "direct")):
                rs = [self.by_rep[(wname, num, r)] / self.by_rep[(wname, den, r)] for r in range(a.repeat)
                      if (wname, num, r) in self.by_rep and (wname, den, r) in self.by_rep]
                if rs:
                    parts.append("%s/%s %.2f (%.2f-%.2f)" % (num, den, statistics.median(rs), min(rs), max(rs)))
            w("  %-10s %s" % (wname, ", ".join(parts) or "n/a"))
        w("")
        w("Relay CPU seconds per run (median; bulk: per GB moved, sessions: per 10,000 sessions)")
        for wname, op in self.workloads:
            parts = []
            for n in RELAYS:
                c = self.cpu.get((wname, n))
                if c:
                    m = statistics.median(c)
                    unit = (m / (a.bulk_conns * self.bulk_bytes / 1e9)) if op else (m / a.sessions * 10000)
                    parts.append("%s %.2fs (%.2f)" % (n, m, unit))
            w("  %-10s %s" % (wname, ", ".join(parts) or "n/a"))
        w("")
        w("Samples (in run order)")
        noisy = []
        for wname, op in self.workloads:
            for n in NAMES:
                v = self.samples.get((wname, n), [])
                w("  %-10s %-8s %s" % (wname, n, " ".join("%.0f" % x for x in v) or "none"))
                if len(v) >= 2 and max(v) / min(v) > NOISY_SPREAD:
                    noisy.append("%s %s" % (wname, n))
        if noisy:
            w("  note: spread above %.1fx in %s: a busy host; more repetitions (REPEAT) steady the medians"
              % (NOISY_SPREAD, ", ".join(noisy)))
        w("")
        if a.idle:
            w("Memory (%d idle connections held through each relay: connect, ping, answer, then held; before the bulk runs)"
              % a.idle)
            for n in RELAYS:
                r = self.mem.get(n)
                if r is None:
                    w("  %-9s not measured (broken in warm-up)" % n)
                    continue
                st, b, h, af = (r.get(k, {}) for k in ("start", "before", "held", "after"))
                per = (h.get("VmRSS", 0) - b.get("VmRSS", 0)) / a.idle if r["ok"] else None
                w("  %-9s %d/%d held, ramp %.1fs: VmRSS %.1f MiB at start, %.1f before, %.1f held (VmHWM %.1f), "
                  "%.1f after close -> %s per connection"
                  % (n, r["still_open"], a.idle, r["ramp"], st.get("VmRSS", 0) / 1024, b.get("VmRSS", 0) / 1024,
                     h.get("VmRSS", 0) / 1024, h.get("VmHWM", 0) / 1024, af.get("VmRSS", 0) / 1024,
                     "%.1f KiB" % per if per is not None else "n/a (run failed)"))
            w("")
        st = getattr(self, "status", None)
        if st and st["times"]:
            def ms(v, q):
                v = sorted(v)
                return v[min(len(v) - 1, int(q * len(v)))] * 1000 if v else float("nan")
            w("smtpgate status with %d connections open (issue 12): %d requests back to back, median %.0f ms, max %.0f ms,"
              " %d sessions listed" % (st["held"], len(st["times"]), ms(st["times"], 0.5), max(st["times"]) * 1000,
                                       min(st["listed"] or [0])))
            w("  a short ping session through the forward meanwhile: median %.2f ms, p99 %.2f ms, max %.2f ms (%d);"
              " with no status running: median %.2f ms, p99 %.2f ms, max %.2f ms (%d)"
              % (ms(st["busy"], 0.5), ms(st["busy"], 0.99), max(st["busy"] or [0]) * 1000, len(st["busy"]),
                 ms(st["quiet"], 0.5), ms(st["quiet"], 0.99), max(st["quiet"] or [0]) * 1000, len(st["quiet"])))
            w("")
        for n, c in log_checks:
            if c:
                w("%s log check: %s" % (n, c))
        s = summarize_log(a.gate_log)
        if s:
            w("smtpgate log: " + s)
        w("")
        if self.failures:
            w("ERRORS (%d) - the forward section is not valid:" % len(self.failures))
            for f in self.failures:
                w("  - " + f)
        else:
            w("All forward runs completed and checked (targets are informational; exit status 0).")
        print("\n".join(out), flush=True)


def main():
    ap = argparse.ArgumentParser(description="SMTPGate forward benchmark driver (see bench/run.sh)")
    ap.add_argument("--target", action="append", required=True, help="NAME:PORT:PID for direct (no PID), haproxy, "
                    "rinetd and smtpgate")
    ap.add_argument("--pump-pid", type=int, required=True)
    ap.add_argument("--pump-workers", default="?")
    ap.add_argument("--gate-log", default="")
    ap.add_argument("--gate-bin", default="", help="smtpgate, for the status timing with the idle connections held")
    ap.add_argument("--gate-config", default="", help="its configuration (names control_path)")
    ap.add_argument("--gate-version", default="?")
    ap.add_argument("--gate-maxconn", default="?")
    ap.add_argument("--haproxy-version", default="?")
    ap.add_argument("--haproxy-threads", default="?")
    ap.add_argument("--haproxy-maxconn", default="?")
    ap.add_argument("--rinetd-version", default="?")
    ap.add_argument("--rinetd-log", default="")
    ap.add_argument("--bulk-conns", type=int, default=8)
    ap.add_argument("--bulk-mib", type=int, default=256)
    ap.add_argument("--sessions", type=int, default=10000)
    ap.add_argument("--inflight", type=int, default=32)
    ap.add_argument("--clients", type=int, default=2)
    ap.add_argument("--idle", type=int, default=5000)
    ap.add_argument("--idle-timeout", type=float, default=120.0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--run-timeout", type=float, default=300.0)
    a = ap.parse_args()
    names = sorted(t.split(":", 1)[0] for t in a.target)
    if names != sorted(NAMES):
        ap.error("--target must be given once each for %s" % ", ".join(NAMES))
    if not (1 <= a.repeat <= 50 and 1 <= a.bulk_conns <= 256 and 1 <= a.bulk_mib <= 4096 and 100 <= a.sessions <= 1000000
            and 1 <= a.inflight <= 1024 and 1 <= a.clients <= 64 and 0 <= a.idle <= 30000):
        ap.error("--repeat 1-50, --bulk-conns 1-256, --bulk-mib 1-4096, --sessions 100-1000000, --inflight 1-1024, "
                 "--clients 1-64, --idle 0-30000")
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, on_term)
    if a.idle:
        from idle_sessions import raise_nofile
        limit = raise_nofile(65536)
        if limit < a.idle + 256:
            ap.error("RLIMIT_NOFILE %d is too low for %d idle connections" % (limit, a.idle))
    started = time.monotonic()
    b = ForwardBench(a)
    try:
        b.run()
    except (Terminated, KeyboardInterrupt) as e:
        b.fail("interrupted (%s)" % (e or "SIGINT"))
    except (RuntimeError, OSError) as e:
        b.fail(str(e))
    log_checks = [(n, b.check_log(n)) for n in ("smtpgate", "rinetd")]
    b.report(started, log_checks)
    return 1 if b.failures else 0


if __name__ == "__main__":
    sys.exit(main())
