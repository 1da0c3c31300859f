"""Plain TCP peers for the lab's [forward] scenarios: a banner+echo server and a client.

serve: listens on every --listen ADDR:PORT ([v6]:PORT for IPv6).  Each accepted connection gets the
  banner "banner PORT\\n" (PORT: the server's own port, so a client sees which port it reached), then
  everything it sends is echoed back; at the client's EOF the server closes.  Connection N is logged to
  DIR/connections.log ("connect N peer=IP:PORT local=IP:PORT") and what it sent is stored byte for
  byte as DIR/conn-N.in once it has ended.  Prints "ready" once every socket listens; exits after
  --lifetime seconds.
    tcppeer.py serve --dir DIR --listen 10.77.3.25:443 [--listen [fd77:0:0:3::25]:443 ...] [--lifetime S]

talk: connects to HOST PORT, sends FILE, half-closes, reads until EOF (at most --timeout seconds in all)
  and stores what it got as OUT.  Prints one line:
    result=ok|closed|reset|refused|timeout|error:WHY local=IP:PORT sent=N received=N
  "closed" means the peer closed (EOF) before all of FILE could be sent or without sending anything
  back; "ok" that everything was sent and the peer closed after answering.  Exit status 0 (the caller
  asserts on the line).
    tcppeer.py talk HOST PORT --send FILE --out OUT [--source ADDR] [--timeout S]
"""
import argparse
import os
import pathlib
import selectors
import socket
import sys
import threading
import time


def fmt(addr):
    host, port = addr[0], addr[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def parse_endpoint(text):
    if text.startswith("["):
        host, _, port = text[1:].partition("]:")
    else:
        host, _, port = text.rpartition(":")
    return host, int(port)


# ---- server ---------------------------------------------------------------------------------------
class Server:
    def __init__(self, directory):
        self.dir = pathlib.Path(directory)
        self.count = 0
        self.lock = threading.Lock()

    def handle(self, conn, peer):
        with self.lock:
            self.count += 1
            n = self.count
            local = conn.getsockname()
            with open(self.dir / "connections.log", "a") as f:
                f.write(f"connect {n} peer={fmt(peer)} local={fmt(local)}\n")
        got = bytearray()
        conn.settimeout(30)
        try:
            conn.sendall(f"banner {local[1]}\n".encode())
            while True:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                got += chunk
                conn.sendall(chunk)
        except OSError as e:
            with self.lock, open(self.dir / "connections.log", "a") as f:
                f.write(f"error {n} {e}\n")
        finally:
            tmp = self.dir / f".conn-{n}.tmp"
            tmp.write_bytes(bytes(got))
            os.rename(tmp, self.dir / f"conn-{n}.in")
            conn.close()


def serve(a):
    srv = Server(a.dir)
    socks = []
    for ep in a.listen:
        host, port = parse_endpoint(ep)
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if fam == socket.AF_INET6:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        s.bind((host, port))
        s.listen(64)
        socks.append(s)
    sel = selectors.DefaultSelector()
    for s in socks:
        sel.register(s, selectors.EVENT_READ)
    print("ready", flush=True)
    deadline = time.monotonic() + a.lifetime
    while time.monotonic() < deadline:
        for key, _ in sel.select(timeout=0.5):
            try:
                conn, peer = key.fileobj.accept()
            except OSError:
                continue
            threading.Thread(target=srv.handle, args=(conn, peer), daemon=True).start()


# ---- client ---------------------------------------------------------------------------------------
def talk(a):
    data = open(a.send, "rb").read()
    deadline = time.monotonic() + a.timeout
    fam = socket.AF_INET6 if ":" in a.host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(a.timeout)
    local = "-"
    try:
        if a.source:
            s.bind((a.source, 0))
        s.connect((a.host, a.port))
    except ConnectionRefusedError:
        return out("refused", local, 0, 0)
    except socket.timeout:
        return out("timeout", local, 0, 0)
    except OSError as e:
        return out("error:" + str(e).replace(" ", "_"), local, 0, 0)
    local = fmt(s.getsockname())
    got = bytearray()
    state = {"err": None}

    def reader():
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    state["err"] = "timeout"
                    return
                s.settimeout(left)
                chunk = s.recv(65536)
                if not chunk:
                    return
                got.extend(chunk)
        except socket.timeout:
            state["err"] = "timeout"
        except ConnectionResetError:
            state["err"] = "reset"
        except OSError as e:
            state["err"] = "error:" + str(e).replace(" ", "_")

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    sent = 0
    send_err = None
    try:
        view = memoryview(data)
        while sent < len(data):
            n = s.send(view[sent:sent + 16384])
            sent += n
        s.shutdown(socket.SHUT_WR)
    except (BrokenPipeError, ConnectionResetError):
        send_err = "closed"
    except socket.timeout:
        send_err = "timeout"
    except OSError as e:
        send_err = "error:" + str(e).replace(" ", "_")
    t.join(max(0.0, deadline - time.monotonic()) + 0.5)
    if t.is_alive():
        state["err"] = "timeout"
    s.close()
    pathlib.Path(a.out).write_bytes(bytes(got))
    if state["err"] == "timeout" or send_err == "timeout":
        return out("timeout", local, sent, len(got))
    if state["err"] == "reset":
        return out("reset", local, sent, len(got))
    if state["err"]:
        return out(state["err"], local, sent, len(got))
    if send_err or not got:
        return out("closed", local, sent, len(got))
    return out("ok", local, sent, len(got))


def out(result, local, sent, received):
    print(f"result={result} local={local} sent={sent} received={received}", flush=True)


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    sv = sub.add_parser("serve")
    sv.add_argument("--dir", required=True)
    sv.add_argument("--listen", action="append", required=True)
    sv.add_argument("--lifetime", type=float, default=300.0)
    tk = sub.add_parser("talk")
    tk.add_argument("host")
    tk.add_argument("port", type=int)
    tk.add_argument("--send", required=True)
    tk.add_argument("--out", required=True)
    tk.add_argument("--source", default=None)
    tk.add_argument("--timeout", type=float, default=10.0)
    a = ap.parse_args()
    if a.cmd == "serve":
        serve(a)
    else:
        talk(a)
    return 0


if __name__ == "__main__":
    sys.exit(main())
