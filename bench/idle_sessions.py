#!/usr/bin/env python3
"""Hold N concurrent idle SMTP sessions open against HOST:PORT and sample the
memory of process PID while they are held (stdlib only).

Each session: connect, read the 220 greeting, send EHLO, read the (multi-line)
250 reply, then stay idle.  Connections are opened in bounded batches and the
whole ramp is bounded in time.  While all sessions are held, VmRSS/VmHWM of
--pid are read from /proc/PID/status; then every session is closed and the RSS
is sampled once more.

Prints one JSON object on stdout; exit status 0 iff all N sessions were
established and still open when memory was sampled.
"""
import argparse
import asyncio
import json
import resource
import sys
import time

from util import proc_status


def raise_nofile(want):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if target > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            pass
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


async def read_reply(reader, timeout):
    """Read one SMTP reply (possibly multi-line); return (code, lines)."""
    lines = []
    while True:
        line = await asyncio.wait_for(reader.readline(), timeout)
        if not line:
            raise ConnectionError("EOF after %d reply lines %r" % (len(lines), lines[-1:]))
        lines.append(line)
        if len(lines) > 100:
            raise ConnectionError("reply too long")
        if len(line) < 4 or line[3:4] != b"-":
            return line[:3], lines


async def open_session(host, port, timeout):
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    try:
        code, lines = await read_reply(reader, timeout)
        if code != b"220":
            raise ConnectionError("greeting %r" % lines[0][:80])
        writer.write(b"EHLO idle-bench.example\r\n")
        await asyncio.wait_for(writer.drain(), timeout)
        code, lines = await read_reply(reader, timeout)
        if code != b"250":
            raise ConnectionError("EHLO reply %r" % lines[0][:80])
    except BaseException:
        writer.close()
        raise
    return reader, writer


async def run(args):
    sessions = []
    errors = []
    result = {"target": args.name, "requested": args.count, "port": args.port, "pid": args.pid}
    result["before"] = proc_status(args.pid)
    t0 = time.monotonic()
    deadline = t0 + args.ramp_timeout
    try:
        while len(sessions) < args.count:
            if time.monotonic() > deadline:
                errors.append("ramp deadline (%.0fs) reached" % args.ramp_timeout)
                break
            n = min(args.batch, args.count - len(sessions))
            res = await asyncio.gather(
                *[open_session(args.host, args.port, args.op_timeout) for _ in range(n)],
                return_exceptions=True)
            for r in res:
                if isinstance(r, BaseException):
                    errors.append("%s: %s" % (type(r).__name__, r))
                else:
                    sessions.append(r)
            if errors:
                break
        result["ramp_seconds"] = round(time.monotonic() - t0, 3)
        result["established"] = len(sessions)
        await asyncio.sleep(args.settle)
        result["still_open"] = sum(1 for r, _ in sessions if not r.at_eof())
        result["held"] = proc_status(args.pid)
    finally:
        for _, w in sessions:
            w.close()
        if sessions:
            await asyncio.wait(
                [asyncio.ensure_future(w.wait_closed()) for _, w in sessions], timeout=10)
    await asyncio.sleep(args.settle)
    result["after_close"] = proc_status(args.pid)
    result["errors"] = errors[:5]
    result["error_count"] = len(errors)
    result["ok"] = (not errors and result["established"] == args.count
                    and result["still_open"] == args.count and "VmRSS" in result["held"])
    return result


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--pid", type=int, required=True, help="process whose memory is sampled")
    ap.add_argument("--name", default="target")
    ap.add_argument("--count", type=int, default=5000)
    ap.add_argument("--batch", type=int, default=250, help="connections opened concurrently per step")
    ap.add_argument("--op-timeout", type=float, default=15.0, help="per connect/read/write bound")
    ap.add_argument("--ramp-timeout", type=float, default=120.0, help="bound for opening all sessions")
    ap.add_argument("--settle", type=float, default=1.0, help="pause before sampling memory")
    args = ap.parse_args()
    if args.host not in ("127.0.0.1", "::1", "localhost"):
        ap.error("loopback only")
    limit = raise_nofile(65536)
    if limit < args.count + 64:
        print("idle_sessions: RLIMIT_NOFILE %d too low for %d sessions" % (limit, args.count),
              file=sys.stderr)
        return 2
    result = asyncio.run(run(args))
    print(json.dumps(result, sort_keys=True))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
