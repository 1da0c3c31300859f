#!/usr/bin/env python3
"""SMTPGate metrics benchmark driver (stdlib only); started by bench/run.sh, which owns the smtp-sink and the
two smtpgate instances: "on" with admin_listen (so every session is counted) and "off" without, the same
configuration otherwise.  The runs are abuse_bench.py's (bench.py's main workload, interleaved, every run
checked the same way); while they go, /metrics of "on" is scraped every SCRAPE_EVERY seconds, far more often
than a Prometheus would, and every scrape must answer 200.  Then the "on" daemon's transaction counter must
be at least the messages sent through it.  Prints T_on / T_off against 1.03 and the scrape latencies.

Exit status: 0 when every run and scrape worked (whatever the figures say), 1 when one failed.
"""
import argparse
import http.client
import re
import signal
import statistics
import sys
import threading
import time

from abuse_bench import NOISY_SPREAD, AbuseBench
from bench import WARMUP_MSGS, WORKLOADS
from util import Terminated, on_term

RATIO_TARGET = 1.03
SCRAPE_EVERY = 1.0


def scrape(port):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        c.request("GET", "/metrics")
        r = c.getresponse()
        return r.status, r.read().decode()
    finally:
        c.close()


def transactions(text):
    return sum(float(v) for v in re.findall(r'^smtpgate_transactions_total\{[^}]*reply_class="2xx"[^}]*\} (\S+)$', text, re.M))


class MetricsBench(AbuseBench):
    def __init__(self, a):
        super().__init__(a)
        self.scrapes = []              # seconds per scrape
        self.stop = threading.Event()

    def scraper(self):
        while not self.stop.wait(SCRAPE_EVERY):
            t0 = time.monotonic()
            try:
                status, _ = scrape(self.a.admin_port)
            except OSError as e:
                self.fail("scrape of /metrics failed: %s" % e)
                continue
            if status != 200:
                self.fail("scrape of /metrics answered %d" % status)
            self.scrapes.append(time.monotonic() - t0)

    def report(self, started):
        wname, sargs, msgs, _ = WORKLOADS[0]
        med = {k: statistics.median(v) for k, v in self.samples.items()}
        out = []
        w = out.append
        w("")
        w("Metrics: bench.py's '%s' workload, smtp-source %s, through two smtpgate" % (wname, " ".join(sargs)))
        w("=" * 100)
        w("on:  admin_listen 127.0.0.1:%d (every session counted), /metrics scraped every %.0f s during the runs"
          % (self.a.admin_port, SCRAPE_EVERY))
        w("off: the same configuration without admin_listen; both mode fixed -> one smtp-sink, on 127.0.0.1")
        w("smtpgate: %s; repeat %d (median), runs interleaved; elapsed %.0fs"
          % (self.a.gate_version, self.a.repeat, time.monotonic() - started))
        w("")
        for fig, name in (("T_on", "on"), ("T_off", "off")):
            v = med.get(name)
            c = self.cpu.get(name)
            w("   %-6s %9s %8s msg/s  gate CPU %s   samples %s" % (
                fig, "%.3fs" % v if v else "FAILED", "%.0f" % (msgs / v) if v else "-",
                "%.2fs" % statistics.median(c) if c else "-", " ".join("%.3f" % x for x in self.samples.get(name, []))))
        on, off = med.get("on"), med.get("off")
        if on and off:
            w("   T_on / T_off = %.3f  (target <= %.2f): %s" % (on / off, RATIO_TARGET, "met" if on / off <= RATIO_TARGET else "NOT MET"))
            paired = [self.by_rep[("on", r)] / self.by_rep[("off", r)] for r in range(self.a.repeat)
                      if ("on", r) in self.by_rep and ("off", r) in self.by_rep]
            if paired:
                w("   paired per repetition: median %.3f, range %.3f-%.3f" % (statistics.median(paired), min(paired), max(paired)))
            con, coff = self.cpu.get("on"), self.cpu.get("off")
            if con and coff:
                w("   smtpgate CPU per run: on %.2fs, off %.2fs: %+.1f us per message for metrics"
                  % (statistics.median(con), statistics.median(coff), 1e6 * (statistics.median(con) - statistics.median(coff)) / msgs))
        if self.scrapes:
            s = sorted(self.scrapes)
            w("   /metrics scrapes during the runs: %d, median %.1f ms, max %.1f ms"
              % (len(s), 1e3 * statistics.median(s), 1e3 * s[-1]))
        noisy = ["%s %.2f" % (m, max(v) / min(v)) for m, v in sorted(self.samples.items()) if len(v) > 1 and max(v) / min(v) > NOISY_SPREAD]
        if noisy:
            w("   note: samples spread (slowest / fastest) %s: the host was busy -- run again on a quiet host" % ", ".join(noisy))
        w("")
        if self.failures:
            w("Metrics ERRORS (%d) - these figures are not valid:" % len(self.failures))
            out += ["  - " + f for f in self.failures]
        else:
            w("Metrics runs completed without tool errors (the target is informational).")
        print("\n".join(out), flush=True)


def main():
    ap = argparse.ArgumentParser(description="SMTPGate metrics benchmark driver (see bench/run.sh)")
    ap.add_argument("--gate", action="append", default=[], help="NAME:PORT:PID:LOGFILE for on and off")
    ap.add_argument("--admin-port", type=int, required=True, help="admin_listen port of the 'on' smtpgate")
    ap.add_argument("--sink-out", default="")
    ap.add_argument("--sink-pid", type=int, default=0)
    ap.add_argument("--smtp-source", default="smtp-source")
    ap.add_argument("--gate-version", default="?")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--run-timeout", type=float, default=300.0)
    a = ap.parse_args()
    signal.signal(signal.SIGTERM, on_term)
    b = MetricsBench(a)
    started = time.monotonic()
    scraper = threading.Thread(target=b.scraper, daemon=True)
    scraper.start()
    try:
        b.run()
    except Terminated:
        b.fail("terminated (BENCH_TIMEOUT)")
    finally:
        b.stop.set()
        scraper.join(timeout=15)
    wname, _, msgs, _ = WORKLOADS[0]
    sent = WARMUP_MSGS + msgs * len(b.samples.get("on", []))
    try:
        status, text = scrape(a.admin_port)
        counted = transactions(text)
        if status != 200 or counted < sent:
            b.fail("smtpgate on counted %d transactions answered 2xx, at least %d were sent through it" % (counted, sent))
    except OSError as e:
        b.fail("final scrape failed: %s" % e)
    b.report(started)
    return 1 if b.failures else 0


if __name__ == "__main__":
    sys.exit(main())
