#!/usr/bin/env python3
"""A raw TCP byte pump for the forward section of bench/run.sh (stdlib only, 127.0.0.1 only).

  tcp_pump.py serve --port P [--workers N]   the server end (run.sh starts it; totals on stdout at exit)

The client ends are functions bench/forward_bench.py imports: bulk(), sessions(), hold().

Every connection opens with a 9-byte header, op (1 byte) + LENGTH (8 bytes, big endian):
  P  ping: LENGTH (<= 65536) bytes follow; the server echoes them, then waits for the client's close
     (the short-session workload; the idle connections are pings that stay open afterwards);
  U  upload: LENGTH bytes follow; the server counts them and answers the count (8 bytes), then waits
     for the client's close;
  D  download: the server sends LENGTH bytes, then waits for the client's close.
No half-close anywhere: rinetd closes both sides when one side sends its FIN, so a protocol that
answers after the client's shutdown(SHUT_WR) would not survive it.  The client always closes first.

The server: N forked workers share one listening socket, each an epoll loop for accepts and pings that
hands bulk (U, D) connections to a thread of their own (blocking 1 MiB recv_into / sendall, so the
GIL is free while the kernel copies).
"""
import argparse
import errno
import json
import os
import selectors
import signal
import socket
import struct
import sys
import threading
import time

HOST = "127.0.0.1"
HDR = struct.Struct("!cQ")
CHUNK = 1 << 20
PING_MAX = 65536
PAYLOAD = os.urandom(CHUNK)      # what uploads and downloads carry (incompressible, not that any relay cares)


# ------------------------------------------------------------------------------------------ server
class Worker:
    def __init__(self, ls, op_timeout):
        self.ls, self.op_timeout = ls, op_timeout
        self.stop = False
        self.lock = threading.Lock()
        self.counts = {"accepted": 0, "pings": 0, "uploads": 0, "downloads": 0, "bytes_up": 0,
                       "bytes_down": 0, "errors": 0, "accept_errors": 0}
        self.first_errors = []

    def count(self, key, n=1):
        with self.lock:
            self.counts[key] += n

    def error(self, msg):
        with self.lock:
            self.counts["errors"] += 1
            if len(self.first_errors) < 5:
                self.first_errors.append(msg)

    def wait_close(self, s):
        """The client closes first; anything it sends after its request is an error."""
        extra = 0
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            extra += len(chunk)
        if extra:
            self.error("%d bytes after the request" % extra)

    def bulk(self, s, op, length, got):
        try:
            s.setblocking(True)
            s.settimeout(self.op_timeout)
            if op == b"U":
                buf = bytearray(CHUNK)
                mv = memoryview(buf)
                while got < length:
                    n = s.recv_into(mv[:min(CHUNK, length - got)])
                    if not n:
                        break
                    got += n
                s.sendall(struct.pack("!Q", got))
                self.count("uploads")
                self.count("bytes_up", got)
                if got != length:
                    self.error("upload: %d of %d bytes before EOF" % (got, length))
                    return
            else:
                mv = memoryview(PAYLOAD)
                sent = 0
                while sent < length:
                    n = min(CHUNK, length - sent)
                    s.sendall(mv[:n])
                    sent += n
                self.count("downloads")
                self.count("bytes_down", sent)
            self.wait_close(s)
        except OSError as e:
            self.error("%s: %s" % ("upload" if op == b"U" else "download", e))
        finally:
            s.close()

    def run(self):
        sel = selectors.DefaultSelector()
        self.ls.setblocking(False)
        sel.register(self.ls, selectors.EVENT_READ, None)
        while not self.stop:
            try:
                events = sel.select(timeout=0.5)
            except InterruptedError:
                continue
            for key, _ in events:
                if key.data is None:
                    for _ in range(64):
                        try:
                            c, _ = self.ls.accept()
                        except (BlockingIOError, InterruptedError):
                            break
                        except OSError as e:       # EMFILE and the like: counted, the loop goes on
                            self.count("accept_errors")
                            self.error("accept: %s" % e)
                            time.sleep(0.01)
                            break
                        c.setblocking(False)
                        self.count("accepted")
                        sel.register(c, selectors.EVENT_READ, [bytearray(), None])
                    continue
                s, st = key.fileobj, key.data
                try:
                    chunk = s.recv(65536)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError as e:
                    chunk, err = b"", e
                else:
                    err = None
                if st[1] == "done":                 # a ping answered: waiting for the close
                    if chunk:
                        self.error("%d bytes after a ping" % len(chunk))
                        continue
                    sel.unregister(s)
                    s.close()
                    continue
                if not chunk:
                    self.error("connection closed before its request was complete (%s)" % (err or "EOF"))
                    sel.unregister(s)
                    s.close()
                    continue
                st[0] += chunk
                if st[1] is None and len(st[0]) >= HDR.size:
                    st[1] = HDR.unpack_from(st[0])
                    del st[0][:HDR.size]
                    op, length = st[1]
                    if op in (b"U", b"D"):
                        sel.unregister(s)
                        got = len(st[0])
                        if op == b"D" and got:
                            self.error("download request with %d bytes of data" % got)
                        threading.Thread(target=self.bulk, args=(s, op, length, got), daemon=True).start()
                        continue
                    if op != b"P" or length > PING_MAX:
                        self.error("bad header %r %d" % (op, length))
                        sel.unregister(s)
                        s.close()
                        continue
                if st[1] is not None and len(st[0]) >= st[1][1]:
                    if len(st[0]) > st[1][1]:
                        self.error("ping: %d bytes, %d announced" % (len(st[0]), st[1][1]))
                    try:
                        s.setblocking(True)
                        s.settimeout(self.op_timeout)
                        s.sendall(st[0])
                        s.setblocking(False)
                    except OSError as e:
                        self.error("ping answer: %s" % e)
                        sel.unregister(s)
                        s.close()
                        continue
                    self.count("pings")
                    st[0], st[1] = None, "done"
        sel.close()


def serve(args):
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((HOST, args.port))
    ls.listen(args.backlog)
    children = []
    for _ in range(args.workers - 1):
        pid = os.fork()
        if pid == 0:
            children = None
            break
        children.append(pid)
    w = Worker(ls, args.op_timeout)

    def on_term(signum, frame):
        w.stop = True
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    w.run()
    if children:
        for pid in children:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 5
        for pid in children:
            while time.monotonic() < deadline:
                if os.waitpid(pid, os.WNOHANG)[0]:
                    break
                time.sleep(0.05)
    with w.lock:
        line = dict(w.counts, worker=os.getpid(), first_errors=w.first_errors)
    sys.stdout.write("tcp_pump worker totals " + json.dumps(line, sort_keys=True) + "\n")
    sys.stdout.flush()
    return 0


# ------------------------------------------------------------------------------------------ clients
def recv_exact(s, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("EOF after %d of %d bytes" % (len(buf), n))
        buf += chunk
    return bytes(buf)


def bulk(port, conns, length, op, timeout):
    """CONNS connections in parallel, each moving LENGTH bytes (op U: client -> server, D: server -> client).
    All connect first, then start together.  {"seconds", "bytes", "ok", "errors"}: seconds from the start to
    the last connection's end, bytes moved in all (as the receiving end counted them)."""
    barrier = threading.Barrier(conns + 1)
    results = [None] * conns
    deadline = time.monotonic() + timeout

    def one(i):
        s = None
        try:
            s = socket.create_connection((HOST, port), timeout=30)
            s.settimeout(max(1.0, deadline - time.monotonic()))
            barrier.wait(max(1.0, deadline - time.monotonic()))
            s.sendall(HDR.pack(op, length))
            if op == b"U":
                mv = memoryview(PAYLOAD)
                sent = 0
                while sent < length:
                    n = min(CHUNK, length - sent)
                    s.sendall(mv[:n])
                    sent += n
                got = struct.unpack("!Q", recv_exact(s, 8))[0]
            else:
                buf = bytearray(CHUNK)
                mv = memoryview(buf)
                got = 0
                while got < length:
                    n = s.recv_into(mv[:min(CHUNK, length - got)])
                    if not n:
                        break
                    got += n
            results[i] = (time.monotonic(), got, None if got == length else
                          "connection %d: %d of %d bytes arrived" % (i, got, length))
        except (OSError, threading.BrokenBarrierError) as e:
            results[i] = (time.monotonic(), 0, "connection %d: %s: %s" % (i, type(e).__name__, e))
            barrier.abort()
        finally:
            if s is not None:
                s.close()

    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(conns)]
    for t in threads:
        t.start()
    errors = []
    try:
        barrier.wait(max(1.0, deadline - time.monotonic()))
    except threading.BrokenBarrierError:
        errors.append("the connections could not all be opened")
    t0 = time.monotonic()
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()) + 5)
    ends = [r for r in results if r is not None]
    errors += [r[2] for r in ends if r[2]]
    if len(ends) < conns:
        errors.append("%d of %d connections still running after %.0fs" % (conns - len(ends), conns, timeout))
    return {"seconds": max([r[0] for r in ends] + [t0]) - t0, "bytes": sum(r[1] for r in ends),
            "ok": not errors and len(ends) == conns, "errors": errors[:5], "error_count": len(errors)}


class Pinger:
    """Non-blocking ping connections on one epoll: start(), then poll() until they are answered."""

    def __init__(self, port):
        self.addr = (HOST, port)
        self.sel = selectors.DefaultSelector()
        self.inflight = 0
        self.answered = []           # sockets answered and still open (hold mode)
        self.done = 0
        self.errors = []
        self.error_count = 0
        self.seq = 0

    def fail(self, msg):
        self.error_count += 1
        if len(self.errors) < 5:
            self.errors.append(msg)

    def start(self):
        self.seq += 1
        payload = b"ping %010d ....." % self.seq    # 21 bytes
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        err = s.connect_ex(self.addr)
        if err not in (0, errno.EINPROGRESS):
            s.close()
            self.fail("connect: %s" % os.strerror(err))
            return
        self.sel.register(s, selectors.EVENT_WRITE, [payload, None])
        self.inflight += 1

    def poll(self, timeout, hold):
        for key, _ in self.sel.select(timeout):
            s, st = key.fileobj, key.data
            if st[1] is None:                       # connected (or not)
                err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                msg = HDR.pack(b"P", len(st[0])) + st[0]
                try:
                    if err:
                        raise OSError(err, os.strerror(err))
                    if s.send(msg) != len(msg):
                        raise OSError("short send")
                except OSError as e:
                    self.finish(s, "connect/send: %s" % e)
                    continue
                st[1] = bytearray()
                self.sel.modify(s, selectors.EVENT_READ, st)
                continue
            try:
                chunk = s.recv(4096)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError as e:
                self.finish(s, "recv: %s" % e)
                continue
            if not chunk:
                self.finish(s, "EOF after %d of %d answer bytes" % (len(st[1]), len(st[0])))
                continue
            st[1] += chunk
            if len(st[1]) >= len(st[0]):
                self.finish(s, None if bytes(st[1]) == st[0] else "answer %r, sent %r" % (bytes(st[1][:40]), st[0]),
                            hold)

    def finish(self, s, error, hold=False):
        self.sel.unregister(s)
        self.inflight -= 1
        if error:
            self.fail(error)
            s.close()
            return
        self.done += 1
        if hold:
            self.answered.append(s)
        else:
            s.close()


def sessions_worker(port, count, inflight, deadline):
    p = Pinger(port)
    started = 0
    while (p.done + p.error_count) < count and time.monotonic() < deadline:
        while p.inflight < inflight and started < count:
            p.start()
            started += 1
        if p.inflight:
            p.poll(min(1.0, max(0.0, deadline - time.monotonic())), False)
    return {"done": p.done, "errors": p.errors, "error_count": p.error_count + (count - p.done - p.error_count)}


def sessions(port, count, inflight, procs, timeout):
    """COUNT short sessions (connect, a 30-byte ping, its 21-byte answer, close), INFLIGHT at a time spread over
    PROCS forked client processes.  {"seconds", "done", "ok", "errors"}: seconds from the start signal to the
    last process's end."""
    import multiprocessing as mp
    ctx = mp.get_context("fork")
    go = ctx.Event()
    q = ctx.Queue()

    def child(share, inf):
        go.wait(60)
        t0 = time.monotonic()
        r = sessions_worker(port, share, inf, t0 + timeout)
        r["end"] = time.monotonic()
        q.put(r)

    shares = [count // procs + (1 if i < count % procs else 0) for i in range(procs)]
    infs = [max(1, inflight // procs + (1 if i < inflight % procs else 0)) for i in range(procs)]
    ps = [ctx.Process(target=child, args=(shares[i], infs[i]), daemon=True) for i in range(procs)]
    for pr in ps:
        pr.start()
    time.sleep(0.2)                                 # let them reach go.wait()
    t0 = time.monotonic()
    go.set()
    results, errors = [], []
    end = t0 + timeout + 10
    while len(results) < procs and time.monotonic() < end:
        try:
            results.append(q.get(timeout=max(0.1, end - time.monotonic())))
        except Exception:                           # queue.Empty
            break
    for pr in ps:
        pr.join(max(0.1, end - time.monotonic()))
        if pr.is_alive():
            pr.kill()
            pr.join(2)
    done = sum(r["done"] for r in results)
    for r in results:
        errors += r["errors"]
    failed = sum(r["error_count"] for r in results)
    if len(results) < procs:
        errors.append("%d of %d client processes did not report" % (procs - len(results), procs))
    if done != count and not errors:
        errors.append("%d of %d sessions completed" % (done, count))
    return {"seconds": max([r["end"] for r in results] + [t0]) - t0, "done": done, "failed": failed,
            "ok": done == count and not errors, "errors": errors[:5]}


def hold(port, count, batch, timeout):
    """Open COUNT ping connections (BATCH at a time), each answered and then held open.  Returns the Pinger
    (its .answered sockets are the held connections) and the ramp seconds; close_all() ends them."""
    p = Pinger(port)
    t0 = time.monotonic()
    deadline = t0 + timeout
    while p.done < count and not p.error_count and time.monotonic() < deadline:
        for _ in range(min(batch, count - p.done - p.inflight)):
            p.start()
        while p.inflight and time.monotonic() < deadline:
            p.poll(min(1.0, max(0.0, deadline - time.monotonic())), True)
    if p.done < count and not p.error_count:
        p.fail("%d of %d connections answered after %.0fs" % (p.done, count, timeout))
    return p, time.monotonic() - t0


ONE_PING_OUT = 30
ONE_PING_IN = HDR.size + ONE_PING_OUT


def one_ping(port, timeout=5.0):
    """One short session (connect, a 30-byte ping, its echo, close); True when the echo came back whole."""
    payload = b"p" * ONE_PING_OUT
    try:
        with socket.create_connection((HOST, port), timeout=timeout) as s:
            s.sendall(HDR.pack(b"P", len(payload)) + payload)
            got = b""
            while len(got) < len(payload):
                d = s.recv(len(payload) - len(got))
                if not d:
                    return False
                got += d
            return got == payload
    except OSError:
        return False


def still_open(socks):
    """How many of SOCKS are open with nothing to read (a closed one reads EOF or an error)."""
    n = 0
    for s in socks:
        try:
            s.recv(1, socket.MSG_DONTWAIT | socket.MSG_PEEK)
        except BlockingIOError:
            n += 1
        except OSError:
            pass
    return n


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    sv = sub.add_parser("serve")
    sv.add_argument("--port", type=int, required=True)
    sv.add_argument("--workers", type=int, default=2)
    sv.add_argument("--backlog", type=int, default=4096)
    sv.add_argument("--op-timeout", type=float, default=600.0, help="bound on one blocking send/recv")
    args = ap.parse_args()
    if not 1 <= args.workers <= 64:
        ap.error("--workers must be 1-64")
    from idle_sessions import raise_nofile
    raise_nofile(65536)
    return serve(args)


if __name__ == "__main__":
    sys.exit(main())
