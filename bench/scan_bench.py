#!/usr/bin/env python3
"""SMTPGate content-scanning benchmark driver (stdlib only); started by bench/run.sh, which owns
clamd, the smtp-sink and the two smtpgate instances.  This script only runs clients:

  * writes COUNT distinct MIME messages of exactly SIZE bytes (CRLF lines, a text part and a base64
    attachment of random bytes, deterministic from SEED) to --msg-dir, plus one carrying EICAR;
  * checks that scanning is live: the EICAR message through the scanning smtpgate gets a 5xx and
    never reaches the sink, and clamdscan reports it FOUND;
  * warm-up, then REPEAT interleaved runs of three ways of handling the same COUNT messages with
    CLIENTS in parallel:
      scan       smtplib clients through smtpgate with antivirus_type clamd (INSTREAM to clamd),
      off        the same through smtpgate without scanning,
      clamdscan  CLIENTS `clamdscan --stream` processes, each given its share of the files (one
                 INSTREAM connection per file, the same request the proxy makes), no SMTP at all;
    each run is checked: every DATA answered 250 (counted), the sink's counter advanced by exactly
    COUNT, the scanning smtpgate logged COUNT `scan ... result=clean` lines (the other none), every
    clamdscan exit 0 with COUNT `: OK` lines, all servers still running;
  * prints medians, T_scan / T_off, T_scan / T_clamdscan and the proxy's own share
    (T_scan - T_clamdscan) / T_scan (median of the per-repetition shares) against the 10 % target,
    with the CPU time of every process involved per run.

Exit status: 0 when every run worked (whatever the figures say), 1 when one failed.
"""
import argparse
import base64
import os
import random
import re
import resource
import signal
import smtplib
import statistics
import subprocess
import sys
import threading
import time

from bench import alive, sink_messages, wait_sink
from lab import cpu_seconds
from util import Terminated, log, on_term

SHARE_TARGET = 0.10       # (T_scan - T_clamdscan) / T_scan
NOISY_SPREAD = 1.3        # slowest / fastest sample of one figure above which the report warns
ATTACHMENT_BYTES = 25500  # raw bytes of the attachment: about 34.5 KB once base64-encoded
EICAR = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
WORDS = ("scan relay proxy spool clamd message client server queue header body attachment verdict "
         "mail transfer agent session reply data envelope sender recipient stream socket daemon").split()
DOMAIN = "bench.smtpgate.test"


# ------------------------------------------------------------------ messages
def message(i, size, rng, payload=None):
    """Message i, exactly SIZE bytes with CRLF line ends; no line starts with '.', so what the
    client puts on the wire and what the proxy hands clamd (un-stuffed) are these same bytes."""
    boundary = "=_smtpgate_bench_%06d" % i
    raw = payload if payload is not None else rng.randbytes(ATTACHMENT_BYTES)
    b64 = base64.encodebytes(raw).decode("ascii").replace("\n", "\r\n")
    head = ("From: Bench Sender <sender%d@%s>\r\n"
            "To: Bench Recipient <rcpt@%s>\r\n"
            "Subject: scan benchmark message %d\r\n"
            "Date: Sat, 01 Nov 2025 12:00:00 +0000\r\n"
            "Message-ID: <scan-%d@%s>\r\n"
            "MIME-Version: 1.0\r\n"
            "Content-Type: multipart/mixed; boundary=\"%s\"\r\n"
            "\r\n"
            "This is a multi-part message in MIME format.\r\n"
            "--%s\r\n"
            "Content-Type: text/plain; charset=us-ascii\r\n"
            "\r\n" % (i, DOMAIN, DOMAIN, i, i, DOMAIN, boundary, boundary))
    tail = ("--%s\r\n"
            "Content-Type: application/octet-stream; name=\"data%d.bin\"\r\n"
            "Content-Disposition: attachment; filename=\"data%d.bin\"\r\n"
            "Content-Transfer-Encoding: base64\r\n"
            "\r\n%s"
            "--%s--\r\n" % (boundary, i, i, b64, boundary))
    room = size - len(head) - len(tail)
    if room < 4:
        raise ValueError("SIZE %d is too small for the MIME structure (%d bytes)" % (size, len(head) + len(tail)))
    lines = []
    while room > 80:
        words = []
        while len(" ".join(words)) < 60:
            words.append(rng.choice(WORDS))
        text = " ".join(words)[:75] + "\r\n"
        lines.append(text)
        room -= len(text)
    lines.append("x" * (room - 2) + "\r\n")     # pads to the exact size (4 <= room <= 80 here)
    body = "".join(lines)
    data = (head + body + tail).encode("ascii")
    assert len(data) == size, (i, len(data), size)
    return data


def client_cpu():
    """CPU seconds of this driver (its client threads) and of the children it has waited for."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def write_messages(d, count, size, seed):
    rng = random.Random(seed)
    paths, blobs = [], []
    os.makedirs(d, exist_ok=True)
    for i in range(count):
        data = message(i, size, rng)
        p = os.path.join(d, "msg%05d.eml" % i)
        with open(p, "wb") as f:
            f.write(data)
        paths.append(p)
        blobs.append(data)
    eicar = message(count, size, rng, payload=EICAR)
    ep = os.path.join(d, "eicar.eml")
    with open(ep, "wb") as f:
        f.write(eicar)
    return paths, blobs, ep, eicar


# ------------------------------------------------------------------ smtpgate log
SCAN_RE = re.compile(rb" scan .*?\bscanner=(\S+) .*?\bresult=(\S+) time=(\S+)")


class GateLog:
    """Follows one smtpgate --log-file: scan lines since the last call."""

    def __init__(self, path):
        self.path = path
        self.offset = os.path.getsize(path) if os.path.exists(path) else 0

    def new_scans(self):
        out = []
        if not os.path.exists(self.path):
            return out
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            chunk = f.read()
        end = chunk.rfind(b"\n") + 1      # a line still being written is read next time
        self.offset += end
        for line in chunk[:end].splitlines():
            parts = line.split(None, 4)
            if len(parts) >= 4 and parts[3] == b"scan":
                m = SCAN_RE.search(line)
                out.append((m.group(1).decode(), m.group(2).decode(), float(m.group(3))) if m else ("?", "?", 0.0))
        return out


# ------------------------------------------------------------------ bench
class ScanBench:
    def __init__(self, a):
        self.a = a
        self.gates = {}                    # name -> dict(port, pid, log)
        for spec in a.gate:
            name, port, pid, path = spec.split(":", 3)
            self.gates[name] = dict(port=int(port), pid=int(pid), log=GateLog(path))
        self.samples = {}                  # mode -> [seconds]
        self.by_rep = {}                   # (mode, rep) -> seconds
        self.cpu = {}                      # (mode, process) -> [CPU seconds]
        self.cpu_names = ("client", "smtpgate", "clamd", "smtp-sink")
        self.scan_times = []               # clamd answer times the scanning proxy logged
        self.failures = []

    def fail(self, msg):
        self.failures.append(msg)
        log("FAILED: " + msg)

    def cpu_now(self, gate_pid):
        return dict(client=client_cpu(), clamd=cpu_seconds(self.a.clamd_pid), sink=cpu_seconds(self.a.sink_pid),
                    smtpgate=cpu_seconds(gate_pid) if gate_pid else None)

    def keep_cpu(self, mode, before, after):
        for what in self.cpu_names:
            key = "sink" if what == "smtp-sink" else what
            if before[key] is not None and after[key] is not None:
                self.cpu.setdefault((mode, what), []).append(after[key] - before[key])

    def servers_alive(self, label):
        procs = [("clamd", self.a.clamd_pid), ("smtp-sink", self.a.sink_pid)]
        procs += [("smtpgate " + n, g["pid"]) for n, g in self.gates.items()]
        for what, pid in procs:
            if not alive(pid):
                self.fail("%s: %s (pid %d) is gone" % (label, what, pid))
                return False
        return True

    # -- SMTP side
    def deliver(self, port, jobs, deadline):
        """jobs: [[(index, bytes)] per session] per client. Returns (250 count, [problems])."""
        ok = [0]
        problems = []
        lock = threading.Lock()

        def client(sessions):
            for batch in sessions:
                try:
                    timeout = max(1.0, deadline - time.monotonic())
                    s = smtplib.SMTP("127.0.0.1", port, local_hostname="client.bench.smtpgate.test",
                                     timeout=timeout)
                    try:
                        for i, data in batch:
                            code, msg = s.mail("sender%d@%s" % (i, DOMAIN))
                            if code != 250:
                                raise smtplib.SMTPResponseException(code, b"MAIL: " + msg)
                            code, msg = s.rcpt("rcpt@%s" % DOMAIN)
                            if code != 250:
                                raise smtplib.SMTPResponseException(code, b"RCPT: " + msg)
                            code, msg = s.data(data)
                            if code != 250:
                                raise smtplib.SMTPResponseException(code, b"DATA: " + msg)
                            with lock:
                                ok[0] += 1
                        code, msg = s.docmd("QUIT")
                        if code != 221:
                            raise smtplib.SMTPResponseException(code, b"QUIT: " + msg)
                    finally:
                        s.close()
                except (OSError, smtplib.SMTPException) as e:
                    with lock:
                        problems.append("%s: %s" % (type(e).__name__, str(e)[:200]))
                    return

        threads = [threading.Thread(target=client, args=(s,), daemon=True) for s in jobs]
        for t in threads:
            t.start()
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))
        if any(t.is_alive() for t in threads):
            problems.append("clients still running after %.0fs" % self.a.run_timeout)
        return ok[0], problems

    def plan(self, blobs):
        """Split the messages: CLIENTS clients, each its share in sessions of PER_SESSION."""
        n = self.a.clients
        jobs = []
        for c in range(n):
            mine = [(i, blobs[i]) for i in range(c, len(blobs), n)]
            jobs.append([mine[k:k + self.a.per_session] for k in range(0, len(mine), self.a.per_session)])
        return jobs

    def run_gate(self, mode, label, blobs):
        g = self.gates[mode]
        expected = len(blobs)
        before = sink_messages(self.a.sink_out)
        cpu0 = self.cpu_now(g["pid"])
        g["log"].new_scans()
        other = [x for n, x in self.gates.items() if n != mode]
        for x in other:
            x["log"].new_scans()
        jobs = self.plan(blobs)
        t0 = time.monotonic()
        accepted, problems = self.deliver(g["port"], jobs, t0 + self.a.run_timeout)
        elapsed = time.monotonic() - t0
        cpu1 = self.cpu_now(g["pid"])
        if problems or accepted != expected:
            self.fail("%s via %s: %d of %d messages got 250; %s"
                      % (label, mode, accepted, expected, "; ".join(problems[:5]) or "no client error"))
            return None
        # The proxy logs the scan before it lets the dot go, so the scan lines are there by now too.
        got = wait_sink(self.a.sink_out, before, expected)
        deadline = time.monotonic() + 10
        if got != expected:
            self.fail("%s via %s: smtp-sink received %d messages, expected %d" % (label, mode, got, expected))
            return None
        want = expected if mode == "scan" else 0
        scans = g["log"].new_scans()
        while len(scans) < want and time.monotonic() < deadline:
            time.sleep(0.05)
            scans += g["log"].new_scans()
        clean = [s for s in scans if s[0] == "clamd" and s[1] == "clean"]
        if len(scans) != want or len(clean) != want:
            self.fail("%s via %s: the smtpgate log has %d scan lines (%d clamd clean), expected %d"
                      % (label, mode, len(scans), len(clean), want))
            return None
        for x in other:
            stray = x["log"].new_scans()
            if stray:
                self.fail("%s via %s: %d scan lines in the other smtpgate's log" % (label, mode, len(stray)))
                return None
        if not self.servers_alive("%s via %s" % (label, mode)):
            return None
        if label == "measure":
            self.scan_times += [s[2] for s in clean]
            self.keep_cpu(mode, cpu0, cpu1)
        return elapsed

    # -- clamdscan side
    def run_clamdscan(self, label, paths):
        n = self.a.clients
        shares = [paths[c::n] for c in range(n)]
        cpu0 = self.cpu_now(None)
        procs = []
        t0 = time.monotonic()
        try:
            for share in shares:
                if share:
                    procs.append(subprocess.Popen(
                        [self.a.clamdscan, "--config-file=" + self.a.clamdscan_conf, "--stream", "--no-summary",
                         "--stdout"] + share, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE))
            results = []
            for p in procs:
                out, err = p.communicate(timeout=max(1.0, t0 + self.a.run_timeout - time.monotonic()))
                results.append((p.returncode, out, err))
        except subprocess.TimeoutExpired:
            self.fail("%s via clamdscan: still running after %.0fs (killed)" % (label, self.a.run_timeout))
            return None
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait()
        elapsed = time.monotonic() - t0
        cpu1 = self.cpu_now(None)
        ok = sum(out.count(b": OK\n") for _, out, _ in results)
        bad = [(rc, (out + err).decode("utf-8", "replace").strip()) for rc, out, err in results
               if rc != 0 or err.strip()]
        if bad or ok != len(paths):
            self.fail("%s via clamdscan: %d of %d files OK; %s"
                      % (label, ok, len(paths), "; ".join("exit %d: %s" % (rc, t[-300:]) for rc, t in bad[:3])
                         or "no error output"))
            return None
        if not self.servers_alive("%s via clamdscan" % label):
            return None
        if label == "measure":
            self.keep_cpu("clamdscan", cpu0, cpu1)
        return elapsed

    # -- scanning is live
    def check_eicar(self, path, data):
        g = self.gates["scan"]
        before = sink_messages(self.a.sink_out)
        g["log"].new_scans()
        s = None
        try:
            s = smtplib.SMTP("127.0.0.1", g["port"], local_hostname="client.bench.smtpgate.test", timeout=30)
            s.mail("eicar@" + DOMAIN)
            s.rcpt("rcpt@" + DOMAIN)
            code, msg = s.data(data)
        except (OSError, smtplib.SMTPException) as e:
            self.fail("EICAR via scan: %s: %s" % (type(e).__name__, e))
            return
        finally:
            if s is not None:
                s.close()
        reply = "%s %s" % (code, msg.decode("utf-8", "replace"))
        if code is None or not 500 <= code < 600:
            self.fail("EICAR via scan: expected a 5xx after DATA, got %s" % reply)
        time.sleep(0.2)
        if sink_messages(self.a.sink_out) != before:
            self.fail("EICAR via scan: the sink received it")
        deadline = time.monotonic() + 5
        scans = g["log"].new_scans()
        while not scans and time.monotonic() < deadline:
            time.sleep(0.05)
            scans = g["log"].new_scans()
        if not any(s[1] == "virus" for s in scans):
            self.fail("EICAR via scan: no `scan ... result=virus` line in the smtpgate log")
        p = subprocess.run([self.a.clamdscan, "--config-file=" + self.a.clamdscan_conf, "--stream", "--no-summary",
                            "--stdout", path], stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
        if p.returncode != 1 or b"FOUND" not in p.stdout:
            self.fail("EICAR via clamdscan: exit %d: %s" % (p.returncode, (p.stdout + p.stderr).decode()[-300:]))
        log("scanning is live: EICAR via smtpgate -> %s; clamdscan -> %s"
            % (reply.strip()[:100], p.stdout.decode("utf-8", "replace").strip().split(": ", 1)[-1]))

    def run(self, paths, blobs, eicar_path, eicar):
        self.check_eicar(eicar_path, eicar)
        if self.failures:
            return
        w = min(len(paths), self.a.warmup)
        for mode in ("scan", "off", "clamdscan"):
            log("scan warm-up: %d messages via %s" % (w, mode))
            ok = (self.run_clamdscan("warm-up", paths[:w]) if mode == "clamdscan"
                  else self.run_gate(mode, "warm-up", blobs[:w]))
            if ok is None:
                return
        modes = ["scan", "off", "clamdscan"]
        for rep in range(self.a.repeat):
            for mode in [modes[(i + rep) % 3] for i in range(3)]:
                secs = (self.run_clamdscan("measure", paths) if mode == "clamdscan"
                        else self.run_gate(mode, "measure", blobs))
                if secs is None:
                    continue
                self.samples.setdefault(mode, []).append(secs)
                self.by_rep[(mode, rep)] = secs
                log("scan rep %d/%d %-9s %.3fs (%.0f msg/s)"
                    % (rep + 1, self.a.repeat, mode, secs, len(blobs) / secs))

    # -- report
    def report(self, count, started):
        a = self.a
        med = {m: statistics.median(v) for m, v in self.samples.items()}
        out = []
        w = out.append
        w("")
        w("Content scanning (issue 4): %s messages of %s bytes, clamd INSTREAM, all on 127.0.0.1 / unix sockets"
          % ("{:,}".format(count), "{:,}".format(a.size)))
        w("=" * 100)
        w("messages: MIME, text part + base64 attachment of %s random bytes, distinct (seed %d), CRLF; %d clients in"
          % ("{:,}".format(ATTACHMENT_BYTES), a.seed, a.clients))
        w("parallel, each its share in SMTP sessions of %d transactions (smtplib; every DATA must get 250)"
          % a.per_session)
        w("clamd: %s" % a.clamd_info)
        w("smtpgate: %s" % a.gate_version)
        w("repeat %d (median reported), runs interleaved; elapsed %.0fs" % (a.repeat, time.monotonic() - started))
        w("")
        rows = (("T_scan", "scan", "smtpgate, antivirus_type clamd -> smtp-sink"),
                ("T_off", "off", "smtpgate, no scanning -> smtp-sink"),
                ("T_clamdscan", "clamdscan", "%d x clamdscan --stream, no SMTP (%s)" % (a.clients, a.clamdscan_via)))
        hdr = "   %-12s %-46s %9s %8s   %s" % ("figure", "what", "median", "msg/s", "samples (s)")
        w(hdr)
        w("   " + "-" * (len(hdr) - 3))
        for fig, mode, what in rows:
            v = med.get(mode)
            w("   %-12s %-46s %9s %8s   %s" % (fig, what, "%.3fs" % v if v else "FAILED",
                                              "%.0f" % (count / v) if v else "-",
                                              " ".join("%.3f" % x for x in self.samples.get(mode, [])) or "none"))
        s, o, c = med.get("scan"), med.get("off"), med.get("clamdscan")
        w("")
        if s and o:
            w("   T_scan / T_off        %.2f" % (s / o))
        # Per repetition the three runs follow each other within seconds, so a burst of other load on
        # the host mostly hits all three; the median of these shares is the figure the target is read on.
        paired = [(self.by_rep[("scan", r)] - self.by_rep[("clamdscan", r)]) / self.by_rep[("scan", r)]
                  for r in range(a.repeat) if ("scan", r) in self.by_rep and ("clamdscan", r) in self.by_rep]
        if s and c and paired:
            share = statistics.median(paired)
            w("   T_scan / T_clamdscan  %.2f" % (s / c))
            w("   proxy's own share     (T_scan - T_clamdscan) / T_scan = %.1f %%  (median of %d repetitions, range "
              "%.1f-%.1f %%; from the medians above %.1f %%)"
              % (100 * share, len(paired), 100 * min(paired), 100 * max(paired), 100 * (s - c) / s))
            w("   target <= %.0f %%: %s" % (100 * SHARE_TARGET, "met" if share <= SHARE_TARGET else "NOT MET"))
            if o:
                # T_scan - T_clamdscan also holds the relaying itself (client, proxy and sink), which
                # T_off measures; what is left over is what scanning costs beyond both anchors
                w("   beyond both anchors   (T_scan - T_off - T_clamdscan) / T_scan = %.1f %% (from the medians)"
                  % (100 * (s - o - c) / s))
        else:
            w("   proxy's own share: n/a (no data)")
        noisy = ["%s %.2f" % (m, max(v) / min(v)) for m, v in sorted(self.samples.items())
                 if len(v) > 1 and max(v) / min(v) > NOISY_SPREAD]
        if noisy:
            w("   note: samples spread (slowest / fastest) %s: the host was busy during some runs; the shares"
              % ", ".join(noisy))
            w("   may not be representative -- run again on a quiet host (REPEAT=5 helps)")
        cpu = {k: statistics.median(v) for k, v in self.cpu.items() if v}
        if cpu:
            w("")
            w("   CPU seconds per run (median; client = the smtplib threads, or the clamdscan processes):")
            w("   %-12s" % "" + "".join("%10s" % n for n in self.cpu_names + ("total",)))
            for mode in ("scan", "off", "clamdscan"):
                cells = [cpu.get((mode, n)) for n in self.cpu_names]
                if any(c is not None for c in cells):
                    w("   %-12s" % mode + "".join("%10s" % ("%.2f" % c if c is not None else "-") for c in cells)
                      + "%10.2f" % sum(c for c in cells if c is not None))
            if all(k in cpu for k in (("scan", "smtpgate"), ("off", "smtpgate"), ("scan", "clamd"))):
                extra = cpu[("scan", "smtpgate")] - cpu[("off", "smtpgate")]
                w("   smtpgate CPU for scanning (scan - off): %.0f us per message = %.1f %% of smtpgate's extra + clamd's"
                  % (1e6 * extra / count, 100 * extra / (extra + cpu[("scan", "clamd")])))
        if self.scan_times:
            t = sorted(self.scan_times)
            w("   clamd answer time logged by smtpgate per message: p50 %.0f ms, p99 %.0f ms, max %.0f ms"
              % (1000 * statistics.median(t), 1000 * t[min(len(t) - 1, int(0.99 * len(t)))], 1000 * t[-1]))
        w("")
        if self.failures:
            w("Scan ERRORS (%d) - these figures are not valid:" % len(self.failures))
            for f in self.failures:
                w("  - " + f)
        else:
            w("Scan runs completed without tool errors (every message accepted, scanned and delivered; "
              "the target is informational).")
        print("\n".join(out), flush=True)


def main():
    ap = argparse.ArgumentParser(description="SMTPGate content-scanning benchmark driver (see bench/run.sh)")
    ap.add_argument("--gate", action="append", required=True,
                    help="NAME:PORT:PID:LOGFILE for NAME scan (clamd configured) and off (no scanning)")
    ap.add_argument("--sink-out", required=True, help="smtp-sink -c stdout file")
    ap.add_argument("--sink-pid", type=int, required=True)
    ap.add_argument("--clamd-pid", type=int, required=True)
    ap.add_argument("--clamd-info", default="?", help="one line describing clamd, for the report")
    ap.add_argument("--gate-version", default="?")
    ap.add_argument("--clamdscan", default="clamdscan")
    ap.add_argument("--clamdscan-conf", required=True, help="clamd.conf naming the socket clamdscan uses")
    ap.add_argument("--clamdscan-via", default="unix socket")
    ap.add_argument("--msg-dir", required=True)
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--size", type=int, default=51200)
    ap.add_argument("--seed", type=int, default=4)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--per-session", type=int, default=25)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--run-timeout", type=float, default=300.0)
    a = ap.parse_args()
    if sorted(g.split(":", 1)[0] for g in a.gate) != ["off", "scan"]:
        ap.error("--gate must be given once for scan and once for off")
    if not (1 <= a.repeat <= 50 and a.count >= 1 and a.clients >= 1 and a.per_session >= 1):
        ap.error("REPEAT must be 1-50; --count, --clients and --per-session >= 1")
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, on_term)
    started = time.monotonic()
    b = ScanBench(a)
    try:
        log("scan: writing %d messages of %d bytes to %s" % (a.count, a.size, a.msg_dir))
        paths, blobs, eicar_path, eicar = write_messages(a.msg_dir, a.count, a.size, a.seed)
        b.run(paths, blobs, eicar_path, eicar)
    except ValueError as e:
        b.fail(str(e))
    except (Terminated, KeyboardInterrupt) as e:
        b.fail("interrupted (%s)" % (e or "SIGINT"))
    b.report(a.count, started)
    return 1 if b.failures else 0


if __name__ == "__main__":
    sys.exit(main())
