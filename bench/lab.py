#!/usr/bin/env python3
"""SMTPGate NAT-lab benchmark driver (stdlib only); started by bench/run.sh, which builds the
network namespaces (Tests/e2e/lib.sh) and owns every server in them.  This script only runs
clients and writes one JSON line per measurement to --out; `report` prints the table.

  lab.py entries  --ns NS --count N --out F
        flushes NS's conntrack table and inserts entries 0 .. N-1 (helper_load.py entries |
        conntrack -R -, i.e. conntrack -I in bulk); records the insert time and the table size.
  lab.py helper   --ns NS --helper-pid P --helper-log F --entries N --out F -- HELPER_LOAD_ARGS
        one helper_load.py run inside NS (the proxy's namespace); samples the helper's CPU time
        around it, then sends SIGUSR1 and reads the helper's own lookup latency from its
        `counters` line (lookup_p50_us, lookup_p99_us, ...).
  lab.py sessions --lab NAME:NS:SINK_OUT:SINK_PID:PROXY_PID ... --dest IP:PORT --out F
        smtp-source from the client namespace NS to the MTA's address through each lab, warm-up
        then REPEAT interleaved runs; each run is checked (exit 0, nothing on stderr, the sink's
        counter advanced by exactly the messages sent, proxy and sink still running).
  lab.py report   --results F
        prints the NAT lab results: figures, ratios, targets marked met / NOT MET.

Exit status: 0 when the tool runs worked (whatever the figures say), 1 when one failed.
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

from bench import alive, sink_messages, summarize_log
from util import Terminated, log, on_term

HERE = os.path.dirname(os.path.abspath(__file__))
RATE_TARGET = 20000.0     # lookups/s (W > 1 runs)
COST_TARGET = 1.5         # cost with the most entries <= 1.5 x cost with the fewest
COUNTERS_RE = re.compile(r" counters ((?:\S+=\S+ ?)+)$")


def emit(path, rec):
    with open(path, "a") as f:
        f.write(json.dumps(rec) + "\n")


def netns(ns, *cmd):
    return ["ip", "netns", "exec", ns] + list(cmd)


# ------------------------------------------------------------------ entries
def cmd_entries(a):
    rec = dict(kind="insert", entries=a.count, ok=False)
    gen = subprocess.run([sys.executable, os.path.join(HERE, "helper_load.py"), "entries",
                          "--count", str(a.count)], capture_output=True, timeout=120)
    if gen.returncode != 0:
        rec["error"] = "helper_load.py entries: " + gen.stderr.decode(errors="replace")[-300:]
        emit(a.out, rec)
        return 1
    subprocess.run(netns(a.ns, "conntrack", "-F"), capture_output=True, timeout=60)
    t0 = time.monotonic()
    p = subprocess.run(netns(a.ns, "conntrack", "-R", "-"), input=gen.stdout, capture_output=True,
                       timeout=a.timeout)
    rec["seconds"] = round(time.monotonic() - t0, 3)
    c = subprocess.run(netns(a.ns, "conntrack", "-C"), capture_output=True, timeout=60)
    try:
        rec["table"] = int(c.stdout.split()[0])
    except (IndexError, ValueError):
        rec["table"] = None
    err = (p.stderr or b"").decode(errors="replace").strip()
    if p.returncode != 0 or err:
        rec["error"] = "conntrack -R exit %d: %s" % (p.returncode, err[-300:])
    elif rec["table"] is None or rec["table"] < a.count:
        rec["error"] = "conntrack table holds %s entries after inserting %d" % (rec["table"], a.count)
    else:
        rec["ok"] = True
    emit(a.out, rec)
    log("conntrack: %d entries inserted in %.2fs (table now %s)%s"
        % (a.count, rec["seconds"], rec["table"], "" if rec["ok"] else "; " + rec["error"]))
    return 0 if rec["ok"] else 1


# ------------------------------------------------------------------ helper
def cpu_seconds(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def counter_lines(path):
    try:
        with open(path, errors="replace") as f:
            return [l.rstrip("\n") for l in f if " counters " in l]
    except OSError:
        return []


def read_counters(pid, path, wait=5.0):
    """SIGUSR1 to the helper; the fields of the `counters` line it then logs."""
    before = len(counter_lines(path))
    os.kill(pid, signal.SIGUSR1)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        lines = counter_lines(path)
        if len(lines) > before:
            m = COUNTERS_RE.search(lines[-1])
            if m:
                out = {}
                for kv in m.group(1).split():
                    k, _, v = kv.partition("=")
                    out[k] = int(v) if v.isdigit() else v
                return out
        time.sleep(0.05)
    return None


def cmd_helper(a):
    rest = a.rest[1:] if a.rest[:1] == ["--"] else a.rest
    cmd = netns(a.ns, sys.executable, os.path.join(HERE, "helper_load.py"), "run") + rest
    rec = dict(kind="helper", entries=a.entries, phase=a.phase, ok=False)
    cpu0 = cpu_seconds(a.helper_pid)
    try:
        p = subprocess.run(cmd, capture_output=True, timeout=a.timeout)
    except subprocess.TimeoutExpired:
        rec["error"] = "helper_load.py still running after %.0fs (killed)" % a.timeout
        emit(a.out, rec)
        return 1
    cpu1 = cpu_seconds(a.helper_pid)
    try:
        rec["load"] = json.loads(p.stdout.decode().strip().splitlines()[-1])
    except (ValueError, IndexError):
        rec["error"] = "helper_load.py exit %d: %s" % (p.returncode, p.stderr.decode(errors="replace")[-400:])
        emit(a.out, rec)
        return 1
    if cpu0 is not None and cpu1 is not None:
        rec["helper_cpu_s"] = round(cpu1 - cpu0, 2)
    rec["counters"] = read_counters(a.helper_pid, a.helper_log) if alive(a.helper_pid) else None
    load = rec["load"]
    problems = []
    if not load.get("ok"):
        problems.append("replies: %d answered of %d sent, %d found+matching, %d wrong, %d notfound, "
                        "%d bad, %d lost, %d send errors %s"
                        % (load["answered"], load["sent"], load["found_ok"], load["wrong"], load["notfound"],
                           load["bad"], load["lost"], load["send_errors"], "; ".join(load.get("errors", []))))
    if rec["counters"] is None:
        problems.append("no counters line from the helper after SIGUSR1 (pid %d %s)"
                        % (a.helper_pid, "running" if alive(a.helper_pid) else "gone"))
    else:
        rej = {k: v for k, v in rec["counters"].items() if k.startswith("rejected_") and v}
        if rej:
            problems.append("helper dropped queries: " + " ".join("%s=%s" % kv for kv in sorted(rej.items())))
    rec["ok"] = not problems
    if problems:
        rec["error"] = "; ".join(problems)
    emit(a.out, rec)
    c = rec["counters"] or {}
    log("helper %-6s W=%-3d %7d entries: %8.0f lookups/s, rtt p50 %s us p99 %s us; helper p50 %s us p99 %s us%s"
        % (load["proto"], load["inflight"], a.entries, load["rate"], load["rtt_p50_us"], load["rtt_p99_us"],
           c.get("lookup_p50_us", "?"), c.get("lookup_p99_us", "?"), "" if rec["ok"] else "; FAILED: " + rec["error"]))
    return 0 if rec["ok"] else 1


# ------------------------------------------------------------------ sessions
def cmd_sessions(a):
    labs = []
    for spec in a.lab:
        name, ns, sink_out, sink_pid, proxy_pid = spec.split(":")
        labs.append(dict(name=name, ns=ns, sink_out=sink_out, sink_pid=int(sink_pid), proxy_pid=int(proxy_pid)))
    sargs = ["-s", str(a.sessions), "-m", str(a.messages), "-l", str(a.size)]
    warm = ["-s", str(min(8, a.sessions)), "-m", "200", "-l", str(a.size)]
    failures, samples, by_rep, broken = [], {}, {}, set()

    def run(lab, label, args, expected):
        cmd = netns(lab["ns"], a.smtp_source, *args, a.dest)
        before = sink_messages(lab["sink_out"])
        t0 = time.monotonic()
        try:
            p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=a.run_timeout)
        except subprocess.TimeoutExpired:
            failures.append("%s via %s: smtp-source still running after %.0fs (killed)"
                            % (label, lab["name"], a.run_timeout))
            return None
        elapsed = time.monotonic() - t0
        out = (p.stdout + p.stderr).decode("utf-8", "replace").strip()
        if p.returncode != 0 or p.stderr.strip():
            failures.append("%s via %s: smtp-source exit %d: %s"
                            % (label, lab["name"], p.returncode, out[-500:] or "(no output)"))
            return None
        deadline = time.monotonic() + 10
        got = sink_messages(lab["sink_out"]) - before
        while got < expected and time.monotonic() < deadline:
            time.sleep(0.02)
            got = sink_messages(lab["sink_out"]) - before
        if got != expected:
            failures.append("%s via %s: smtp-sink received %d messages, expected %d"
                            % (label, lab["name"], got, expected))
            return None
        for pid, what in ((lab["proxy_pid"], "smtpgate"), (lab["sink_pid"], "smtp-sink")):
            if not alive(pid):
                failures.append("%s via %s: %s (pid %d) is gone" % (label, lab["name"], what, pid))
                return None
        return elapsed

    try:
        for lab in labs:
            log("lab warm-up via %s" % lab["name"])
            if run(lab, "warm-up", warm, 200) is None:
                broken.add(lab["name"])
        for rep in range(a.repeat):
            order = [labs[(i + rep) % len(labs)] for i in range(len(labs))]
            for lab in order:
                if lab["name"] in broken:
                    continue
                secs = run(lab, "sessions", sargs, a.messages)
                if secs is None:
                    continue
                samples.setdefault(lab["name"], []).append(round(secs, 4))
                by_rep["%s/%d" % (lab["name"], rep)] = secs
                log("lab rep %d/%d %-6s %.3fs (%.0f msg/s)" % (rep + 1, a.repeat, lab["name"], secs, a.messages / secs))
    except (Terminated, KeyboardInterrupt) as e:
        failures.append("interrupted (%s)" % (e or "SIGINT"))
    for f in failures:
        log("FAILED: " + f)
    rec = dict(kind="sessions", args=" ".join(sargs), dest=a.dest, messages=a.messages, repeat=a.repeat,
               samples=samples, by_rep=by_rep, failures=failures, ok=not failures)
    helpers = {}
    for spec in a.helper or []:
        name, pid, path = spec.split(":", 2)
        helpers[name] = read_counters(int(pid), path) if alive(int(pid)) else None
        if helpers[name] is None:
            failures.append("no counters line from %s's helper after SIGUSR1" % name)
            rec["ok"] = False
    rec["helpers"] = helpers
    rec["proxy_logs"] = {n: summarize_log(p) for n, p in (s.split(":", 1) for s in a.proxy_log or [])}
    emit(a.out, rec)
    return 0 if rec["ok"] else 1


# ------------------------------------------------------------------ report
def fmt_int(v):
    return "-" if v is None else "{:,}".format(int(round(v)))


def fmt_us(v):
    if v is None:
        return "-"
    return "%.1f" % v if v < 100 else "{:,.0f}".format(v)


def med(vals):
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


def ratio_cell(num, den, target=None):
    if not num or not den:
        return "n/a"
    r = num / den
    if target is None:
        return "%.2f" % r
    return "%.2f %s" % (r, "met" if r <= target else "NOT MET")


def cmd_report(a):
    recs = []
    with open(a.results) as f:
        for line in f:
            line = line.strip()
            if line:
                recs.append(json.loads(line))
    meta = dict(kv.split("=", 1) for kv in a.meta or [])
    out = []
    w = out.append
    errors = []
    w("")
    w("NAT lab results (network namespaces, release binaries, Examples/firewall-*.%s.sh applied verbatim)"
      % meta.get("fw", "nft"))
    w("=" * 100)
    w("kernel %s   cpus %d   nf_conntrack_max %s   nf_conntrack_buckets %s   helper %s"
      % (os.uname().release, os.cpu_count() or 0, meta.get("ct_max", "?"), meta.get("ct_buckets", "?"),
         meta.get("helper_version", "?")))

    helper = [r for r in recs if r["kind"] == "helper"]
    inserts = [r for r in recs if r["kind"] == "insert"]
    for r in recs:
        if not r.get("ok") and r["kind"] in ("helper", "insert"):
            errors.append("%s (%s entries): %s" % (r["kind"], r.get("entries"), r.get("error", "failed")))
    if helper or inserts:
        w("")
        w("1. smtpgate-helper lookups (helper on the router namespace, load from the proxy namespace over the")
        w("   veth/bridge; queries for entries chosen at random among those inserted; helper restarted per run)")
        ins = {}
        for r in inserts:
            if r.get("ok"):
                ins.setdefault(r["entries"], []).append(r["seconds"])
        if ins:
            w("   conntrack entries made with `conntrack -R` (-I lines in bulk): "
              + "; ".join("%s in %.2fs (%s/s)" % (fmt_int(n), med(v), fmt_int(n / med(v)) if med(v) else "-")
                          for n, v in sorted(ins.items())))
        groups = {}
        for r in helper:
            if not r.get("load"):
                continue
            L, C = r["load"], r.get("counters") or {}
            groups.setdefault((L["proto"], L["inflight"], r["entries"]), []).append(
                dict(rate=L["rate"], rtt50=L["rtt_p50_us"], rtt99=L["rtt_p99_us"], h50=C.get("lookup_p50_us"),
                     h99=C.get("lookup_p99_us"), hmean=C.get("lookup_mean_us"), hmax=C.get("lookup_max_us"),
                     hcpu=r.get("helper_cpu_s"), ccpu=L.get("client_cpu_pct"), window=L.get("window_s"),
                     hcpu_per=(r["helper_cpu_s"] * 1e6 / C["queries"]
                               if r.get("helper_cpu_s") is not None and C.get("queries") else None),
                     capped=L.get("capped"), ok=r.get("ok")))
        m = {k: {f: med([s[f] for s in v]) for f in v[0] if f not in ("capped", "ok")} for k, v in groups.items()}
        for k, v in groups.items():
            m[k]["n"] = len(v)
            m[k]["capped"] = any(s["capped"] for s in v)
        hdr = "   %-7s %4s %9s %11s %9s %9s %9s %9s %9s  %9s %9s  %s" % (
            "proto", "W", "entries", "lookups/s", "rtt p50", "rtt p99", "hlp p50", "hlp p99", "hlp mean",
            "hlp CPU/q", "load CPU%", "target >= %s/s (W > 1)" % fmt_int(RATE_TARGET))
        w("")
        w("   median of %s run(s) each; W = queries in flight; rtt = round trip at the load generator; hlp = the"
          % ("/".join(sorted({str(v["n"]) for v in m.values()})) or "0"))
        w("   helper's own lookup time (SIGUSR1 counters line); hlp CPU/q = helper CPU time per query; load CPU% =")
        w("   the load generator's share of one CPU (well under 100: it is not the bottleneck); times in microseconds")
        w(hdr)
        w("   " + "-" * (len(hdr) - 3))
        for k in sorted(m, key=lambda k: (k[0] != "v2", k[1], k[2])):
            v = m[k]
            verdict = ""
            if k[1] > 1 and v["rate"]:
                verdict = "met" if v["rate"] >= RATE_TARGET else "NOT MET"
                if v["capped"]:
                    verdict += " (run capped by the replay cache, see below)"
            w("   %-7s %4d %9s %11s %9s %9s %9s %9s %9s  %9s %9s  %s" % (
                k[0], k[1], fmt_int(k[2]), fmt_int(v["rate"]), fmt_us(v["rtt50"]), fmt_us(v["rtt99"]),
                fmt_us(v["h50"]), fmt_us(v["h99"]), fmt_us(v["hmean"]), fmt_int(v["hcpu_per"]), fmt_int(v["ccpu"]), verdict or "(latency run)"))
        counts = sorted({k[2] for k in m})
        if len(counts) >= 2:
            lo, hi = counts[0], counts[-1]
            w("")
            w("   cost with %s entries / cost with %s entries (target <= %.2f)" % (fmt_int(hi), fmt_int(lo), COST_TARGET))
            hdr = "   %-7s %4s   %-22s %-22s %-22s %-22s" % (
                "proto", "W", "per lookup (1/rate)", "round trip p99", "helper lookup p50", "helper lookup p99")
            w(hdr)
            w("   " + "-" * (len(hdr) - 3))
            for proto, inflight in sorted({(k[0], k[1]) for k in m}, key=lambda x: (x[0] != "v2", x[1])):
                a_, b_ = m.get((proto, inflight, lo)), m.get((proto, inflight, hi))
                if not a_ or not b_:
                    continue
                w("   %-7s %4d   %-22s %-22s %-22s %-22s" % (
                    proto, inflight,
                    ratio_cell(a_["rate"], b_["rate"], COST_TARGET),
                    ratio_cell(b_["rtt99"], a_["rtt99"], COST_TARGET),
                    ratio_cell(b_["h50"], a_["h50"], COST_TARGET),
                    ratio_cell(b_["h99"], a_["h99"], COST_TARGET)))
            w("   (per lookup = lookups/s with the fewest / with the most entries; at W > 1 the round trip is mostly")
            w("   queueing, W / rate, so its p99 moves with scheduling noise more than with the table)")
        if any(v["capped"] for v in m.values()):
            w("   note: v2 runs stop at --max-queries: the helper remembers every v2 nonce for 2 x --window (60 s)")
            w("   in a cache of 131,072, so more than ~2,200 v2 queries/s sustained over a minute are refused as")
            w("   replay_cache_full; each run starts a fresh helper and stays under the cap.")

    sess = [r for r in recs if r["kind"] == "sessions"]
    for r in sess:
        errors += ["sessions: " + f for f in r.get("failures", [])]
        w("")
        w("2. Session rate through the router: smtp-source %s from the client namespace to %s"
          % (r["args"], r["dest"]))
        w("   local = smtpgate on the router, mode netfilter (REDIRECT); split = smtpgate in its own namespace,")
        w("   mode remote-udp (DNAT+SNAT on the router, v2 lookup at smtpgate-helper on the router);")
        w("   one session per message; the same smtp-sink behind both; %d run(s) each, interleaved" % r["repeat"])
        meds = {n: med(v) for n, v in r["samples"].items()}
        w("   %-6s %10s %10s   %s" % ("lab", "wall", "msg/s", "samples (s)"))
        for n in ("local", "split"):
            v = meds.get(n)
            w("   %-6s %10s %10s   %s" % (n, "%.3fs" % v if v else "FAILED", fmt_int(r["messages"] / v) if v else "-",
                                          " ".join("%.3f" % x for x in r["samples"].get(n, [])) or "none"))
        if meds.get("local") and meds.get("split"):
            paired = [r["by_rep"]["split/%d" % i] / r["by_rep"]["local/%d" % i] for i in range(r["repeat"])
                      if "split/%d" % i in r["by_rep"] and "local/%d" % i in r["by_rep"]]
            extra = (meds["split"] - meds["local"]) / r["messages"] * 1e6
            w("   ratio split/local (wall time): %.2f  (paired median %.2f, range %.2f-%.2f); split runs at %.0f%% of"
              % (meds["split"] / meds["local"], med(paired), min(paired), max(paired), 100 * meds["local"] / meds["split"]))
            w("   the local session rate; %+.0f us of wall time per session at %s concurrent sessions"
              % (extra, r["args"].split()[1]))
        for n, c in (r.get("helpers") or {}).items():
            if c:
                w("   helper in the %s lab over all its sessions: queries %s found %s not_found %s, lookup p50 %s us "
                  "p99 %s us max %s us" % (n, c.get("queries"), c.get("found"), c.get("not_found"),
                                            c.get("lookup_p50_us"), c.get("lookup_p99_us"), c.get("lookup_max_us")))
        for n, s in (r.get("proxy_logs") or {}).items():
            w("   %s proxy log: %s" % (n, s or "-"))
    w("")
    if errors:
        w("NAT lab ERRORS (%d) - these figures are not valid:" % len(errors))
        for e in errors:
            w("  - " + e)
    else:
        w("NAT lab runs completed without tool errors (targets are informational).")
    print("\n".join(out), flush=True)
    return 1 if errors else 0


def main():
    ap = argparse.ArgumentParser(description="SMTPGate NAT-lab benchmark driver (see bench/run.sh)")
    sub = ap.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("entries")
    e.add_argument("--ns", required=True)
    e.add_argument("--count", type=int, required=True)
    e.add_argument("--timeout", type=float, default=300.0)
    e.add_argument("--out", required=True)
    h = sub.add_parser("helper")
    h.add_argument("--ns", required=True)
    h.add_argument("--helper-pid", type=int, required=True)
    h.add_argument("--helper-log", required=True)
    h.add_argument("--entries", type=int, required=True)
    h.add_argument("--phase", type=int, default=0)
    h.add_argument("--timeout", type=float, default=120.0)
    h.add_argument("--out", required=True)
    h.add_argument("rest", nargs=argparse.REMAINDER, help="-- helper_load.py run arguments")
    s = sub.add_parser("sessions")
    s.add_argument("--lab", action="append", required=True, help="NAME:NETNS:SINK_OUT:SINK_PID:PROXY_PID")
    s.add_argument("--helper", action="append", help="LAB:PID:LOG (counters read after the runs)")
    s.add_argument("--proxy-log", action="append", help="LAB:LOGFILE (summarized)")
    s.add_argument("--dest", required=True)
    s.add_argument("--sessions", type=int, default=32)
    s.add_argument("--messages", type=int, default=3000)
    s.add_argument("--size", type=int, default=2048)
    s.add_argument("--repeat", type=int, default=3)
    s.add_argument("--run-timeout", type=float, default=300.0)
    s.add_argument("--smtp-source", default="smtp-source")
    s.add_argument("--out", required=True)
    r = sub.add_parser("report")
    r.add_argument("--results", required=True)
    r.add_argument("--meta", action="append", help="KEY=VALUE shown in the header")
    a = ap.parse_args()
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, on_term)
    try:
        return {"entries": cmd_entries, "helper": cmd_helper, "sessions": cmd_sessions, "report": cmd_report}[a.cmd](a)
    except (Terminated, KeyboardInterrupt) as e:
        log("lab.py %s interrupted (%s)" % (a.cmd, e or "SIGINT"))
        return 1


if __name__ == "__main__":
    sys.exit(main())
