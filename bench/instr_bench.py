#!/usr/bin/env python3
"""SMTPGate instructions-per-session benchmark driver (stdlib only); started by bench/run.sh (section
"instructions"), which owns the smtp-sink, the DNS responder and the configuration files.

Each relay is started under callgrind (valgrind --tool=callgrind) twice: once with no sessions and once
with --sessions sessions of `smtp-source -s 8 -m N -l 2048`; each process is stopped with SIGTERM when
its sessions have ended, and callgrind's total of its user-space instructions (every thread) is read
from its output file.  Instructions per session = (I_N - I_0) / N: start-up, configuration and shutdown
cancel out.  Wall time under valgrind means nothing and is not reported.

Arms (--arm NAME:KIND:CONF, KIND haproxy or smtpgate): haproxy (the reference), smtpgate with the policy
features off, smtpgate with them on (whatever CONF turns on), and a bare relay (--arm floor:relay:...),
the program bench/policy builds as `bare-relay`: SwiftNIO's floor for one relayed connection.

Prints one table and the ratios against the targets (3x haproxy features off, 4x on).  Exit status 0
when every run worked, 1 when one failed (a run whose sink did not get every message fails).
"""
import argparse
import os
import re
import signal
import subprocess
import sys
import time

from util import alive, listening, log

TARGET_OFF = 3.0
TARGET_ON = 4.0
SOURCE_ARGS = ["-s", "8", "-l", "2048"]


def callgrind_total(path):
    """The 'summary:' (or 'totals:') figure of a callgrind output file: instructions executed."""
    with open(path) as f:
        for line in f:
            if line.startswith("summary:") or line.startswith("totals:"):
                return int(line.split()[1])
    raise ValueError("%s has no summary line" % path)


def sink_messages(path):
    """The last 'mesg=N' count smtp-sink -c printed (its counters line is rewritten with \\r)."""
    try:
        with open(path, "rb") as f:
            data = f.read().decode("ascii", "replace")
    except OSError:
        return 0
    found = re.findall(r"mesg=(\d+)", data)
    return int(found[-1]) if found else 0


class Run:
    def __init__(self, a, arm, kind, conf, sessions):
        self.a, self.arm, self.kind, self.conf, self.sessions = a, arm, kind, conf, sessions
        self.out = os.path.join(a.work, "callgrind-%s-%d.out" % (arm, sessions))

    def command(self):
        vg = [self.a.valgrind, "--tool=callgrind", "--callgrind-out-file=" + self.out, "--dump-instr=no",
              "--dump-line=no", "--trace-children=no"]
        if self.kind == "haproxy":
            return vg + [self.a.haproxy, "-db", "-f", self.conf]
        if self.kind == "smtpgate":
            return vg + [self.a.smtpgate, "run", "--config", self.conf, "--log-file",
                         os.path.join(self.a.work, "instr-%s-%d.log" % (self.arm, self.sessions))]
        if self.kind == "relay":
            return vg + [self.a.relay, "--listen", "127.0.0.1:%d" % self.a.port, "--to", "127.0.0.1:%d" % self.a.sink_port]
        raise ValueError("unknown kind %s" % self.kind)

    def go(self):
        """Instructions of the whole process; raises RuntimeError with why when the run did not work."""
        if os.path.exists(self.out):
            os.unlink(self.out)
        err = open(os.path.join(self.a.work, "instr-%s-%d.err" % (self.arm, self.sessions)), "wb")
        p = subprocess.Popen(self.command(), stdout=err, stderr=err, start_new_session=True)
        try:
            deadline = time.monotonic() + self.a.start_timeout
            while not listening(self.a.port):
                if p.poll() is not None:
                    raise RuntimeError("%s exited (%s) before listening; see %s" % (self.arm, p.returncode, err.name))
                if time.monotonic() > deadline:
                    raise RuntimeError("%s not listening after %.0fs" % (self.arm, self.a.start_timeout))
                time.sleep(0.1)
            if self.sessions:
                before = sink_messages(self.a.sink_out)
                r = subprocess.run([self.a.smtp_source, *SOURCE_ARGS, "-m", str(self.sessions), "127.0.0.1:%d" % self.a.port],
                                   capture_output=True, timeout=self.a.run_timeout)
                if r.returncode != 0:
                    raise RuntimeError("smtp-source through %s: exit %d %s" % (self.arm, r.returncode, r.stderr[-300:]))
                deadline = time.monotonic() + 30
                while sink_messages(self.a.sink_out) - before < self.sessions and time.monotonic() < deadline:
                    time.sleep(0.1)
                got = sink_messages(self.a.sink_out) - before
                if got < self.sessions:
                    raise RuntimeError("the sink got %d of %d messages through %s" % (got, self.sessions, self.arm))
            else:
                time.sleep(1.0)   # the empty run idles a little too, as the measured one does between sessions
            p.send_signal(signal.SIGUSR1 if self.kind == "haproxy" else signal.SIGTERM)
            try:
                p.wait(timeout=self.a.stop_timeout)
            except subprocess.TimeoutExpired:
                raise RuntimeError("%s did not stop within %.0fs of its stop signal" % (self.arm, self.a.stop_timeout))
            if not os.path.exists(self.out):
                raise RuntimeError("callgrind wrote no %s (see %s)" % (self.out, err.name))
            return callgrind_total(self.out)
        finally:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
            err.close()


def main():
    ap = argparse.ArgumentParser(description="instructions per session under callgrind (see bench/run.sh)")
    ap.add_argument("--arm", action="append", default=[], help="NAME:KIND:CONF (KIND haproxy, smtpgate or relay)")
    ap.add_argument("--port", type=int, required=True, help="the port every arm listens on, one at a time")
    ap.add_argument("--sink-port", type=int, required=True)
    ap.add_argument("--sink-out", required=True)
    ap.add_argument("--sessions", type=int, default=1000)
    ap.add_argument("--work", required=True)
    ap.add_argument("--valgrind", default="valgrind")
    ap.add_argument("--haproxy", default="haproxy")
    ap.add_argument("--smtpgate", required=True, help="a copy made with strip --strip-debug")
    ap.add_argument("--relay", default="", help="bench/policy's bare-relay, stripped the same way")
    ap.add_argument("--smtp-source", default="smtp-source")
    ap.add_argument("--start-timeout", type=float, default=120.0)
    ap.add_argument("--stop-timeout", type=float, default=120.0)
    ap.add_argument("--run-timeout", type=float, default=900.0)
    ap.add_argument("--describe", action="append", default=[], help="NAME:TEXT shown under the table")
    a = ap.parse_args()
    failures, per = [], {}
    started = time.monotonic()
    for spec in a.arm:
        name, kind, conf = spec.split(":", 2)
        try:
            counts = {}
            for n in (0, a.sessions):
                log("instructions: %s with %d sessions under callgrind" % (name, n))
                counts[n] = Run(a, name, kind, conf, n).go()
            per[name] = (counts[a.sessions] - counts[0]) / a.sessions
            log("instructions: %s %.0f per session (I_0 %d, I_%d %d)" % (name, per[name], counts[0], a.sessions, counts[a.sessions]))
        except (RuntimeError, ValueError, OSError, subprocess.TimeoutExpired) as e:
            failures.append("%s: %s" % (name, e))
    out = [""]
    w = out.append
    w("Instructions per session: callgrind, smtp-source %s -m %d through each relay to one smtp-sink, on 127.0.0.1"
      % (" ".join(SOURCE_ARGS), a.sessions))
    w("=" * 100)
    w("(I with %d sessions - I with none) / %d, user-space instructions of the relay's process, every thread; elapsed %.0fs"
      % (a.sessions, a.sessions, time.monotonic() - started))
    w("")
    base = per.get("haproxy")
    for name, v in per.items():
        ratio = " %6.2f x haproxy" % (v / base) if base else ""
        w("   %-14s %12.0f%s" % (name, v, ratio))
    for d in a.describe:
        w("   " + d)
    if base:
        w("")
        for name, target in (("smtpgate", TARGET_OFF), ("smtpgate-policy", TARGET_ON)):
            if name in per:
                r = per[name] / base
                w("   %s / haproxy = %.2f (target <= %.0f): %s" % (name, r, target, "met" if r <= target else "NOT MET"))
        if "floor" in per and "smtpgate" in per:
            w("   smtpgate above the bare NIO relay: %.0f instructions per session (%.0f %% of smtpgate's)"
              % (per["smtpgate"] - per["floor"], 100 * (per["smtpgate"] - per["floor"]) / per["smtpgate"]))
    w("")
    if failures:
        w("Instructions ERRORS (%d) - these figures are not valid:" % len(failures))
        out += ["  - " + f for f in failures]
    else:
        w("Instruction counts completed without tool errors.")
    print("\n".join(out), flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
