"""The lab's destination MTA: aiosmtpd listening on one or more addresses of the mta namespace.

Each accepted message is stored byte for byte (after the SMTP dot-unstuffing, CRLF kept) as
DIR/msg-N.eml, with DIR/msg-N.env holding "peer=IP:PORT from=... to=..." for the assertions.
Every accepted TCP connection is appended to DIR/connections.log ("connect IP:PORT"), so a test can
assert that the MTA saw no connection at all. Prints "ready" on stdout once every listener is up.

usage: mta.py --dir DIR --port 25 --listen 10.77.3.25 [--listen fd77:3::25]
"""
import argparse
import asyncio
import os
import pathlib
import signal
import threading

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP


class Store:
    def __init__(self, directory):
        self.dir = pathlib.Path(directory)
        self.count = 0
        self.lock = threading.Lock()
        self.ready = False

    def log_connection(self, peer):
        if not self.ready:          # the controller's own start-up probe
            return
        with self.lock, open(self.dir / "connections.log", "a") as f:
            f.write(f"connect {fmt(peer)}\n")

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower().startswith("nobody@"):
            return "550 5.1.1 no such user here"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.count += 1
            n = self.count
        base = self.dir / f"msg-{n}"
        tmp = self.dir / f".msg-{n}.tmp"
        tmp.write_bytes(envelope.original_content)
        meta = (f"peer={fmt(session.peer)} helo={session.host_name} from={envelope.mail_from} "
                f"to={','.join(envelope.rcpt_tos)}\n")
        (self.dir / f"msg-{n}.env").write_text(meta)
        os.rename(tmp, str(base) + ".eml")
        return f"250 2.0.0 stored as msg-{n}"


def fmt(peer):
    if not peer:
        return "-"
    host, port = peer[0], peer[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class LoggingSMTP(SMTP):
    def connection_made(self, transport):
        self.event_handler.log_connection(transport.get_extra_info("peername"))
        super().connection_made(transport)


class LabController(Controller):
    def factory(self):
        return LoggingSMTP(self.handler, **self.SMTP_kwargs)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--port", type=int, default=25)
    ap.add_argument("--listen", action="append", required=True)
    ap.add_argument("--lifetime", type=float, default=600.0)
    args = ap.parse_args()
    store = Store(args.dir)
    controllers = []
    for host in args.listen:
        c = LabController(store, hostname=host, port=args.port, decode_data=False,
                          server_hostname="mta.lab.test", ready_timeout=10)
        c.start()
        controllers.append(c)
    store.ready = True
    print("ready", flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: done.set())
    signal.signal(signal.SIGINT, lambda *a: done.set())
    done.wait(args.lifetime)        # bounded: never outlives a run
    for c in controllers:
        c.stop()


if __name__ == "__main__":
    main()
