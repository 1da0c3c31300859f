"""The lab's SMTP client (Python smtplib): sends one message and prints one result line.

usage: client.py HOST PORT MSGFILE [--from A] [--to B] [--helo NAME] [--timeout S] [--source ADDR]
Prints "ok 250 <reply text>" when the message was accepted, or "fail STAGE CODE <text>" where
STAGE is connect|greeting|helo|mail|rcpt|data|closed|error and CODE the SMTP code (000 if none).
Exit status 0 in both cases (the caller asserts on the line); 2 on a usage error.
"""
import argparse
import smtplib
import socket
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("host")
    ap.add_argument("port", type=int)
    ap.add_argument("msgfile")
    ap.add_argument("--from", dest="sender", default="alice@customer.test")
    ap.add_argument("--to", action="append", default=None)
    ap.add_argument("--helo", default="client.customer.test")
    ap.add_argument("--timeout", type=float, default=20.0)
    ap.add_argument("--source", default=None, help="local address to send from (a second customer on one host)")
    a = ap.parse_args()
    rcpts = a.to or ["bob@example.test"]
    body = open(a.msgfile, "rb").read()
    stage = "connect"
    s = smtplib.SMTP(local_hostname=a.helo, timeout=a.timeout,
                     source_address=(a.source, 0) if a.source else None)
    try:
        stage = "greeting"
        code, msg = s.connect(a.host, a.port)
        if code != 220:
            return out("fail", stage, code, msg)
        stage = "helo"
        code, msg = s.ehlo()
        if code != 250:
            return out("fail", stage, code, msg)
        stage = "mail"
        code, msg = s.mail(a.sender)
        if code != 250:
            return out("fail", stage, code, msg)
        stage = "rcpt"
        for r in rcpts:
            code, msg = s.rcpt(r)
            if code not in (250, 251):
                return out("fail", stage, code, msg)
        stage = "data"
        code, msg = s.data(body)
        if code != 250:
            return out("fail", stage, code, msg)
        out("ok", "", code, msg)
        try:
            s.quit()
        except Exception:
            pass
    except smtplib.SMTPConnectError as e:
        out("fail", "greeting", e.smtp_code, e.smtp_error)
    except smtplib.SMTPResponseException as e:
        out("fail", stage, e.smtp_code, e.smtp_error)
    except smtplib.SMTPServerDisconnected as e:
        out("fail", "closed", 0, str(e).encode())
    except (OSError, socket.timeout) as e:
        out("fail", "connect" if stage == "greeting" else "error", 0, str(e).encode())


def out(kind, stage, code, msg):
    if isinstance(msg, bytes):
        msg = msg.decode("utf-8", "replace")
    msg = " ".join(str(msg).split())
    if kind == "ok":
        print(f"ok {code:03d} {msg}", flush=True)
    else:
        print(f"fail {stage} {int(code or 0):03d} {msg}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
