#!/usr/bin/env python3
"""SMTPGate benchmark driver (stdlib only); started by bench/run.sh, which owns
the sink / haproxy / smtpgate processes.  This script only runs clients:

  * throughput: smtp-source workloads against every target (direct sink,
    haproxy, smtpgate), interleaved, REPEAT times each, timed with
    time.monotonic(); the median is reported.  Every run is checked: smtp-source
    must exit 0 with no output on stderr, and the sink's message counter
    (smtp-sink -c) must advance by exactly the number of messages sent.
  * memory: bench/idle_sessions.py holds N idle sessions through smtpgate (and,
    for reference, through haproxy) and samples VmRSS / VmHWM.

Prints a results table on stdout.  Exit status: 0 when every tool run
succeeded, whatever the timing/memory targets say; 1 when a run failed.
"""
import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import time

from util import Terminated, log, on_term, proc_status

HERE = os.path.dirname(os.path.abspath(__file__))

# name, smtp-source arguments, messages delivered per run, payload bytes/message
WORKLOADS = [
    ("sessions", ["-s", "32", "-m", "3000", "-l", "2048"], 3000, 2048),
    ("bulk", ["-s", "4", "-m", "20", "-l", "5000000"], 20, 5000000),
]
WARMUP = ["-s", "8", "-m", "200", "-l", "2048"]
WARMUP_MSGS = 200
RATIO_TARGET = 1.25       # smtpgate wall time <= 1.25 x haproxy
RSS_TARGET_MIB = 150.0    # smtpgate VmRSS with N idle sessions

MESG_RE = re.compile(rb"mesg=(\d+)\r")


def sink_messages(path):
    """Last value of smtp-sink's running 'mesg=N' counter (0 if none yet)."""
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        f.seek(max(0, size - 512))
        tail = f.read()
    found = MESG_RE.findall(tail)
    return int(found[-1]) if found else 0


def wait_sink(path, before, expected, secs=10):
    """Messages smtp-sink counted since `before`, waiting (bounded) for `expected`: it bumps its counter
    when it sees the final '.', normally before the client gets the 250, but allow a short grace anyway."""
    deadline = time.monotonic() + secs
    got = sink_messages(path) - before
    while got < expected and time.monotonic() < deadline:
        time.sleep(0.02)
        got = sink_messages(path) - before
    return got


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


class Bench:
    def __init__(self, args):
        self.args = args
        self.targets = []          # [(name, port, pid or None)]
        for spec in args.target:
            name, port, pid = spec.split(":")
            self.targets.append((name, int(port), int(pid) if pid else None))
        self.samples = {}          # (workload, target) -> [seconds]
        self.by_rep = {}           # (workload, target, rep) -> seconds
        self.failures = []         # human-readable strings
        self.broken = set()        # targets that failed warm-up

    def fail(self, msg):
        self.failures.append(msg)
        log("FAILED: " + msg)

    def smtp_source(self, label, target, port, pid, sargs, expected):
        """Run one smtp-source; return wall seconds, or None on failure."""
        cmd = [self.args.smtp_source] + sargs + ["127.0.0.1:%d" % port]
        before = sink_messages(self.args.sink_out)
        t0 = time.monotonic()
        try:
            p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True,
                               timeout=self.args.run_timeout)
        except subprocess.TimeoutExpired:
            self.fail("%s via %s: smtp-source still running after %.0fs (killed)"
                      % (label, target, self.args.run_timeout))
            return None
        elapsed = time.monotonic() - t0
        out = (p.stdout + p.stderr).decode("utf-8", "replace").strip()
        if p.returncode != 0 or p.stderr.strip():
            self.fail("%s via %s: smtp-source exit %d: %s"
                      % (label, target, p.returncode, out[-500:] or "(no output)"))
            return None
        got = wait_sink(self.args.sink_out, before, expected)
        if got != expected:
            self.fail("%s via %s: smtp-sink received %d messages, expected %d"
                      % (label, target, got, expected))
            return None
        if pid is not None and not alive(pid):
            self.fail("%s via %s: process %d is gone" % (label, target, pid))
            return None
        if not alive(self.args.sink_pid):
            self.fail("smtp-sink (pid %d) is gone" % self.args.sink_pid)
            return None
        return elapsed

    def run_throughput(self):
        for name, port, pid in self.targets:
            log("warm-up via %s (port %d)" % (name, port))
            if self.smtp_source("warm-up", name, port, pid, WARMUP, WARMUP_MSGS) is None:
                self.broken.add(name)
        n = len(self.targets)
        for rep in range(self.args.repeat):
            # rotate the target order every repetition so drift hits all equally
            order = [self.targets[(i + rep) % n] for i in range(n)]
            for wname, sargs, msgs, _ in WORKLOADS:
                for name, port, pid in order:
                    if name in self.broken:
                        continue
                    secs = self.smtp_source(wname, name, port, pid, sargs, msgs)
                    if secs is None:
                        continue
                    self.samples.setdefault((wname, name), []).append(secs)
                    self.by_rep[(wname, name, rep)] = secs
                    log("rep %d/%d %-8s %-9s %.3fs"
                        % (rep + 1, self.args.repeat, wname, name, secs))

    def run_idle(self, name):
        port, pid = next((p, q) for n, p, q in self.targets if n == name)
        cmd = [sys.executable, os.path.join(HERE, "idle_sessions.py"),
               "--port", str(port), "--pid", str(pid), "--name", name,
               "--count", str(self.args.idle), "--ramp-timeout", str(self.args.idle_timeout)]
        log("memory: holding %d idle sessions via %s" % (self.args.idle, name))
        try:
            p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True,
                               timeout=self.args.idle_timeout + 60)
        except subprocess.TimeoutExpired:
            self.fail("memory via %s: idle_sessions.py did not finish in time" % name)
            return None
        try:
            res = json.loads(p.stdout.decode().strip().splitlines()[-1])
        except (ValueError, IndexError):
            self.fail("memory via %s: idle_sessions.py exit %d: %s"
                      % (name, p.returncode, p.stderr.decode("utf-8", "replace")[-500:]))
            return None
        if p.returncode != 0 or not res.get("ok"):
            self.fail("memory via %s: %d/%d sessions established, %s still open; errors: %s"
                      % (name, res.get("established", 0), self.args.idle,
                         res.get("still_open", "?"), "; ".join(res.get("errors", []))))
        return res

    # ------------------------------------------------------------------ report
    def report(self, mem, gate_start, gate_pre_idle, started, log_summary):
        a = self.args
        med = {k: statistics.median(v) for k, v in self.samples.items()}
        names = [t[0] for t in self.targets]
        out = []
        w = out.append
        w("SMTPGate benchmark results")
        w("==========================")
        w("date %s   host %s   cpus %d   repeat %d (median reported)   elapsed %.0fs"
          % (time.strftime("%Y-%m-%dT%H:%M:%S%z"), os.uname().nodename, os.cpu_count() or 0,
             a.repeat, time.monotonic() - started))
        w("smtpgate %s" % a.gate_version)
        w("haproxy nbthread %s, maxconn %s; smtp-sink %s" % (a.haproxy_threads, a.haproxy_maxconn, a.sink_flags))
        w("all traffic on 127.0.0.1; ports %s" % ", ".join("%s=%d" % (n, p) for n, p, _ in self.targets))
        w("")
        w("Throughput (wall time, lower is better)")
        hdr = "%-9s %-34s %9s %9s %9s   %12s %14s   %s" % (
            "workload", "smtp-source args", "direct", "haproxy", "smtpgate",
            "gate/haproxy", "haproxy/direct", "target (gate <= %.2f x haproxy)" % RATIO_TARGET)
        w(hdr)
        w("-" * len(hdr))
        for wname, sargs, msgs, size in WORKLOADS:
            cells = []
            for n in ("direct", "haproxy", "smtpgate"):
                v = med.get((wname, n))
                cells.append("%8.3fs" % v if v is not None else "%9s" % ("FAILED" if n in names else "-"))
            d, h, g = (med.get((wname, n)) for n in ("direct", "haproxy", "smtpgate"))
            gh = "%12.2f" % (g / h) if g and h else "%12s" % "n/a"
            hd = "%14.2f" % (h / d) if h and d else "%14s" % "n/a"
            if g and h:
                verdict = "met" if g / h <= RATIO_TARGET else "NOT MET"
            else:
                verdict = "n/a (no data)"
            w("%-9s %-34s %s %s %s   %s %s   %s" % (
                wname, " ".join(sargs), cells[0], cells[1], cells[2], gh, hd, verdict))
        w("")
        w("Rates (median run)")
        for wname, sargs, msgs, size in WORKLOADS:
            parts = []
            for n in ("direct", "haproxy", "smtpgate"):
                v = med.get((wname, n))
                if v:
                    if wname == "bulk":
                        parts.append("%s %.0f MB/s" % (n, msgs * size / v / 1e6))
                    else:
                        parts.append("%s %.0f msg/s" % (n, msgs / v))
            w("  %-9s %s" % (wname, ", ".join(parts) or "n/a"))
        w("")
        w("Paired ratios (median over repetitions of the per-repetition ratio; less sensitive to drift)")
        for wname, _, _, _ in WORKLOADS:
            parts = []
            for num, den in (("smtpgate", "haproxy"), ("haproxy", "direct")):
                rs = [self.by_rep[(wname, num, r)] / self.by_rep[(wname, den, r)]
                      for r in range(a.repeat)
                      if (wname, num, r) in self.by_rep and (wname, den, r) in self.by_rep]
                if rs:
                    parts.append("%s/%s %.2f (range %.2f-%.2f)"
                                 % (num, den, statistics.median(rs), min(rs), max(rs)))
            w("  %-9s %s" % (wname, ", ".join(parts) or "n/a"))
        w("")
        w("Samples (seconds, in run order)")
        for wname, _, _, _ in WORKLOADS:
            for n in names:
                v = self.samples.get((wname, n), [])
                w("  %-9s %-9s %s" % (wname, n, " ".join("%.3f" % x for x in v) or "none"))
        w("")
        w("Memory (%d concurrent idle sessions: greeting + EHLO, then held)" % a.idle)
        if gate_start:
            w("  smtpgate VmRSS at start            %8.1f MiB" % (gate_start.get("VmRSS", 0) / 1024))
        if gate_pre_idle:
            w("  smtpgate VmRSS after throughput    %8.1f MiB  (VmHWM so far %.1f MiB, threads %s)"
              % (gate_pre_idle.get("VmRSS", 0) / 1024, gate_pre_idle.get("VmHWM", 0) / 1024,
                 gate_pre_idle.get("Threads", "?")))
        for n in ("smtpgate", "haproxy"):
            r = mem.get(n)
            if r is None:
                if n in names and not a.no_idle:
                    w("  %-9s FAILED (see errors)" % n)
                continue
            held = r.get("held", {})
            after = r.get("after_close", {})
            w("  %-9s sessions %d/%d open, ramp %.1fs: VmRSS %.1f MiB held, VmHWM %.1f MiB, "
              "VmRSS %.1f MiB after close"
              % (n, r.get("still_open", r.get("established", 0)), a.idle, r.get("ramp_seconds", 0),
                 held.get("VmRSS", 0) / 1024, held.get("VmHWM", 0) / 1024,
                 after.get("VmRSS", 0) / 1024))
        r = mem.get("smtpgate")
        if r and r.get("ok"):
            rss = r["held"]["VmRSS"] / 1024
            w("  target smtpgate VmRSS with %d sessions <= %.0f MiB: %.1f MiB -> %s"
              % (a.idle, RSS_TARGET_MIB, rss, "met" if rss <= RSS_TARGET_MIB else "NOT MET"))
        elif "smtpgate" in names and not a.no_idle:
            w("  target smtpgate VmRSS <= %.0f MiB: n/a (memory run failed)" % RSS_TARGET_MIB)
        if log_summary:
            w("")
            w("smtpgate log: " + log_summary)
        w("")
        if self.failures:
            w("ERRORS (%d) - the benchmark is not valid:" % len(self.failures))
            for f in self.failures:
                w("  - " + f)
        else:
            w("All runs completed without tool errors (targets are informational; exit status 0).")
        print("\n".join(out), flush=True)


def summarize_log(path):
    if not path or not os.path.exists(path):
        return ""
    events, levels, lines = {}, {}, 0
    with open(path, "rb") as f:
        for raw in f:
            lines += 1
            parts = raw.split(None, 4)
            if len(parts) >= 4 and parts[1].startswith(b"smtpgate["):
                levels[parts[2].decode("ascii", "replace")] = levels.get(parts[2].decode("ascii", "replace"), 0) + 1
                ev = parts[3].decode("ascii", "replace")
                events[ev] = events.get(ev, 0) + 1
            elif raw.lstrip().startswith(b"{"):
                try:
                    obj = json.loads(raw)
                    ev, lv = str(obj.get("event")), str(obj.get("level"))
                    events[ev] = events.get(ev, 0) + 1
                    levels[lv] = levels.get(lv, 0) + 1
                except ValueError:
                    pass
    size = os.path.getsize(path)
    return "%d lines, %.1f MB; levels %s; events %s" % (
        lines, size / 1e6,
        " ".join("%s=%d" % kv for kv in sorted(levels.items())) or "-",
        " ".join("%s=%d" % kv for kv in sorted(events.items())) or "-")


def main():
    ap = argparse.ArgumentParser(description="SMTPGate benchmark driver (see bench/run.sh)")
    ap.add_argument("--target", action="append", required=True, help="NAME:PORT:PID (PID may be empty)")
    ap.add_argument("--sink-out", required=True, help="smtp-sink -c stdout file")
    ap.add_argument("--sink-pid", type=int, required=True)
    ap.add_argument("--sink-flags", default="")
    ap.add_argument("--smtp-source", default="smtp-source")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--run-timeout", type=float, default=300.0)
    ap.add_argument("--idle", type=int, default=5000)
    ap.add_argument("--idle-timeout", type=float, default=120.0)
    ap.add_argument("--no-idle", action="store_true")
    ap.add_argument("--gate-log", default="")
    ap.add_argument("--gate-version", default="?")
    ap.add_argument("--haproxy-threads", default="?")
    ap.add_argument("--haproxy-maxconn", default="?")
    args = ap.parse_args()
    if not 1 <= args.repeat <= 50:
        ap.error("REPEAT must be between 1 and 50")
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, on_term)

    started = time.monotonic()
    b = Bench(args)
    gate = next((t for t in b.targets if t[0] == "smtpgate"), None)
    gate_start = proc_status(gate[2]) if gate and gate[2] else {}
    mem = {}
    gate_pre_idle = {}
    try:
        b.run_throughput()
        if not args.no_idle:
            names = [t[0] for t in b.targets]
            if gate:
                gate_pre_idle = proc_status(gate[2])
                if "smtpgate" not in b.broken:
                    mem["smtpgate"] = b.run_idle("smtpgate")
            if "haproxy" in names and "haproxy" not in b.broken:
                mem["haproxy"] = b.run_idle("haproxy")
    except (Terminated, KeyboardInterrupt) as e:
        b.fail("interrupted (%s)" % (e or "SIGINT"))
    mem = {k: v for k, v in mem.items() if v is not None}
    b.report(mem, gate_start, gate_pre_idle, started, summarize_log(args.gate_log))
    return 1 if b.failures else 0


if __name__ == "__main__":
    sys.exit(main())
