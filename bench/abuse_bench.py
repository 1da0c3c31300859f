#!/usr/bin/env python3
"""SMTPGate abuse-control benchmark driver (stdlib only); started by bench/run.sh, which owns the
smtp-sink, the PostgreSQL server and the smtpgate instances (the same configuration: "on" with per-client
locks and three rate limits kept in an SQLite state store, "pg" with the same on a PostgreSQL store when
PostgreSQL is installed, "off" without).  This script only runs clients:

  * bench.py's main workload (its WORKLOADS[0], "sessions": smtp-source, 32 parallel sessions, 3,000
    messages of 2 KB, one recipient each) through each smtpgate, after a warm-up, interleaved and the
    order rotated each repetition, REPEAT times; every run checked as bench.py checks its own
    (smtp-source exit 0 and silent, the sink's counter advanced by exactly the messages sent, every
    server still running);
  * the limits are far above the workload (1,000,000 a window): the figure is the bookkeeping's cost,
    not refusals.  The run fails if the limited smtpgate logs a `ratelimit`, `lock` or `limit` line,
    if it never logged `state_store ... result=loaded` (abuse control not on), or if the other one did;
  * prints T_on, T_pg, T_off (medians), T_on / T_off against the 1.10 target and T_pg / T_off against
    1.15, the paired per-repetition ratios, the CPU seconds of each smtpgate per run, the state file's size (with its -wal and -shm)
    and what it holds, and the count of state_store / ratelimit lines in each log.

Exit status: 0 when every run worked (whatever the figures say), 1 when one failed.
"""
import argparse
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import time

from bench import WARMUP, WARMUP_MSGS, WORKLOADS, alive, sink_messages, wait_sink
from lab import cpu_seconds
from util import Terminated, log, log_events, on_term

RATIO_TARGET = 1.10        # T_on / T_off, SQLite store
PG_TARGET = 1.15           # T_pg / T_off, PostgreSQL store
NOISY_SPREAD = 1.3
WATCHED = ("state_store", "ratelimit", "lock", "unlock", "limit", "reject")


def store_summary(db):
    """Sizes of the state file and its WAL / shm, and the rows it holds (read-only)."""
    sizes = {}
    for suffix in ("", "-wal", "-shm"):
        p = db + suffix
        if os.path.exists(p):
            sizes[suffix or "db"] = os.path.getsize(p)
    rows = {}
    sample = []
    try:
        con = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=5)
        try:
            for (name,) in con.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name"):
                rows[name] = con.execute('SELECT count(*) FROM "%s"' % name.replace('"', '""')).fetchone()[0]
            if "counters" in rows:
                cols = [c[1] for c in con.execute("PRAGMA table_info(counters)")]
                for r in con.execute("SELECT * FROM counters ORDER BY key, kind LIMIT 6"):
                    sample.append(" ".join("%s=%s" % (c, v) for c, v in zip(cols, r)))
        finally:
            con.close()
    except sqlite3.Error as e:
        rows["error"] = str(e)
    return sizes, rows, sample


def store_lines(db, when):
    sizes, rows, sample = store_summary(db)
    out = ["   state file %s: %s" % (when, ", ".join("%s %s bytes" % (k, "{:,}".format(v)) for k, v in sizes.items())
                                      or "missing"),
           "     rows: %s" % (", ".join("%s %s" % kv for kv in sorted(rows.items())) or "-")]
    out += ["     counters: %s" % s for s in sample]
    return out


class AbuseBench:
    def __init__(self, a):
        self.a = a
        self.gates = []                    # [(name, port, pid, log)] in --gate order
        for spec in a.gate:
            name, port, pid, path = spec.split(":", 3)
            self.gates.append((name, int(port), int(pid), path))
        self.samples = {}                  # name -> [seconds]
        self.by_rep = {}                   # (name, rep) -> seconds
        self.cpu = {}                      # name -> [CPU seconds of that smtpgate per run]
        self.failures = []

    def fail(self, msg):
        self.failures.append(msg)
        log("FAILED: " + msg)

    def smtp_source(self, label, name, port, pid, sargs, expected):
        cmd = [self.a.smtp_source] + sargs + ["127.0.0.1:%d" % port]
        before = sink_messages(self.a.sink_out)
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
        for what, q in [("smtp-sink", self.a.sink_pid)] + [("smtpgate " + g[0], g[2]) for g in self.gates]:
            if not alive(q):
                self.fail("%s via %s: %s (pid %d) is gone" % (label, name, what, q))
                return None
        if label == "measure" and cpu0 is not None and cpu1 is not None:
            self.cpu.setdefault(name, []).append(cpu1 - cpu0)
        return elapsed

    def run(self):
        wname, sargs, msgs, _ = WORKLOADS[0]
        for name, port, pid, _ in self.gates:
            log("abuse warm-up via %s (port %d)" % (name, port))
            if self.smtp_source("warm-up", name, port, pid, WARMUP, WARMUP_MSGS) is None:
                return
        n = len(self.gates)
        for rep in range(self.a.repeat):
            for name, port, pid, _ in [self.gates[(i + rep) % n] for i in range(n)]:
                secs = self.smtp_source("measure", name, port, pid, sargs, msgs)
                if secs is None:
                    continue
                self.samples.setdefault(name, []).append(secs)
                self.by_rep[(name, rep)] = secs
                log("abuse rep %d/%d %-8s %-4s %.3fs (%.0f msg/s)" % (rep + 1, self.a.repeat, wname, name, secs, msgs / secs))

    def check_logs(self):
        """The limited proxy loaded its store and refused nothing; the other one has no abuse control."""
        result = {}
        for name, _, _, path in self.gates:
            events, lines = log_events(path, WATCHED)
            result[name] = (events, lines)
            if name in ("on", "pg"):
                if events.get("state_store", 0) < 1:
                    self.fail("smtpgate %s: no state_store line in its log (abuse control not on?)" % name)
                for ev in ("ratelimit", "lock", "limit", "reject"):
                    if events.get(ev, 0):
                        self.fail("smtpgate %s: %d %s lines in its log (nothing should be refused): %s"
                                  % (name, events[ev], ev, "; ".join(l for l in lines if (" %s " % ev) in l)[:500]))
            elif any(events.get(ev, 0) for ev in WATCHED):
                self.fail("smtpgate %s: abuse-control lines in its log: %s" % (name, "; ".join(lines)[:500]))
        return result

    def report(self, started, events):
        a = self.a
        wname, sargs, msgs, size = WORKLOADS[0]
        med = {k: statistics.median(v) for k, v in self.samples.items()}
        out = []
        w = out.append
        w("")
        w("Abuse control (locks + rate limits): bench.py's '%s' workload, smtp-source %s, through two smtpgate"
          % (wname, " ".join(sargs)))
        w("=" * 100)
        w("on:  lock_on virus, lock_duration 3600, ratelimit_connections 1000000/60, ratelimit_messages and")
        w("     ratelimit_recipients 1000000/3600, state_store sqlite:%s, control_path set" % a.state_db)
        w("pg:  the same with state_store postgresql:///smtpgate?host=... (a throw-away local server, unix socket)")
        w("off: the same configuration without them; all mode fixed -> one smtp-sink, all on 127.0.0.1 (one client key)")
        w("smtpgate: %s" % a.gate_version)
        w("repeat %d (median reported), runs interleaved; elapsed %.0fs" % (a.repeat, time.monotonic() - started))
        w("")
        hdr = "   %-7s %-40s %9s %8s %10s   %s" % ("figure", "what", "median", "msg/s", "gate CPU", "samples (s)")
        w(hdr)
        w("   " + "-" * (len(hdr) - 3))
        for fig, name, what in (("T_on", "on", "locks + 3 rate limits, SQLite store"),
                                ("T_pg", "pg", "locks + 3 rate limits, PostgreSQL store"),
                                ("T_off", "off", "abuse control off")):
            if name == "pg" and a.pg_missing:
                continue
            v = med.get(name)
            c = self.cpu.get(name)
            w("   %-7s %-40s %9s %8s %10s   %s" % (
                fig, what, "%.3fs" % v if v else "FAILED", "%.0f" % (msgs / v) if v else "-",
                "%.2fs" % statistics.median(c) if c else "-",
                " ".join("%.3f" % x for x in self.samples.get(name, [])) or "none"))
        off = med.get("off")
        w("")
        for name, store, target in (("on", "SQLite", RATIO_TARGET), ("pg", "PostgreSQL", PG_TARGET)):
            if name == "pg" and a.pg_missing:
                w("   T_pg / T_off (target <= %.2f, PostgreSQL store): not measured: %s" % (target, a.pg_missing))
                continue
            v = med.get(name)
            fig = "T_" + name
            if not (v and off):
                w("   %s / T_off: n/a (no data)" % fig)
                continue
            paired = [self.by_rep[(name, r)] / self.by_rep[("off", r)] for r in range(a.repeat)
                      if (name, r) in self.by_rep and ("off", r) in self.by_rep]
            w("   %s / T_off = %.3f  (target <= %.2f, %s store): %s"
              % (fig, v / off, target, store, "met" if v / off <= target else "NOT MET"))
            if paired:
                w("   paired per repetition: median %.3f, range %.3f-%.3f" % (statistics.median(paired), min(paired), max(paired)))
            con, coff = self.cpu.get(name), self.cpu.get("off")
            if con and coff:
                extra = statistics.median(con) - statistics.median(coff)
                w("   smtpgate CPU per run: %s %.2fs, off %.2fs: %+.0f us per message for abuse control"
                  % (name, statistics.median(con), statistics.median(coff), 1e6 * extra / msgs))
        noisy = ["%s %.2f" % (m, max(v) / min(v)) for m, v in sorted(self.samples.items())
                 if len(v) > 1 and max(v) / min(v) > NOISY_SPREAD]
        if noisy:
            w("   note: samples spread (slowest / fastest) %s: the host was busy during some runs -- run again on a"
              % ", ".join(noisy))
            w("   quiet host (REPEAT=5 helps)")
        time.sleep(3.5)            # counters are handed over every 2 s and committed within a second
        w("")
        out += store_lines(a.state_db, "after the runs, smtpgate still running")
        for name, _, _, _ in self.gates:
            ev = events.get(name, ({}, []))[0]
            w("   smtpgate %-3s log: %s" % (name, ", ".join("%s %d" % (e, ev.get(e, 0)) for e in WATCHED)))
        for name in ("on", "pg"):
            for l in events.get(name, ({}, []))[1][:3]:
                w("     %s: %s" % (name, l[:160]))
        w("")
        if self.failures:
            w("Abuse ERRORS (%d) - these figures are not valid:" % len(self.failures))
            for f in self.failures:
                w("  - " + f)
        else:
            w("Abuse-control runs completed without tool errors (nothing refused; the target is informational).")
        print("\n".join(out), flush=True)


def main():
    ap = argparse.ArgumentParser(description="SMTPGate abuse-control benchmark driver (see bench/run.sh)")
    ap.add_argument("--gate", action="append", default=[], help="NAME:PORT:PID:LOGFILE for NAME on and off")
    ap.add_argument("--sink-out", default="")
    ap.add_argument("--sink-pid", type=int, default=0)
    ap.add_argument("--state-db", required=True, help="the limited smtpgate's SQLite state file")
    ap.add_argument("--pg-missing", default="", help="why there is no pg gate (PostgreSQL not installed)")
    ap.add_argument("--smtp-source", default="smtp-source")
    ap.add_argument("--gate-version", default="?")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--run-timeout", type=float, default=300.0)
    ap.add_argument("--store-only", action="store_true",
                    help="only print what the state file holds (run.sh calls it once smtpgate has stopped)")
    a = ap.parse_args()
    if a.store_only:
        print("\n".join(store_lines(a.state_db, "after smtpgate stopped (it writes what it counted every 2 s"
                                     " and at shutdown)")), flush=True)
        return 0
    names = sorted(g.split(":", 1)[0] for g in a.gate)
    if names not in (["off", "on"], ["off", "on", "pg"]) or not a.sink_out or not a.sink_pid:
        ap.error("--gate must be given once for on, once for off and at most once for pg, with --sink-out and --sink-pid")
    if ("pg" in names) == bool(a.pg_missing):
        ap.error("give either --gate pg:... or --pg-missing REASON")
    if not 1 <= a.repeat <= 50:
        ap.error("REPEAT must be between 1 and 50")
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, on_term)
    started = time.monotonic()
    b = AbuseBench(a)
    try:
        b.run()
    except (Terminated, KeyboardInterrupt) as e:
        b.fail("interrupted (%s)" % (e or "SIGINT"))
    events = b.check_logs()
    b.report(started, events)
    return 1 if b.failures else 0


if __name__ == "__main__":
    sys.exit(main())
