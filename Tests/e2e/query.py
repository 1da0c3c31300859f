"""Asks an smtpgate-helper about one connection, as the proxy would (lab tool, independent of smtpgate).

usage: query.py HELPER_IP SRC SPORT DST DPORT (--key FILE | --legacy-secret N) [--port 114] [--timeout 2]
                [--replay]
SRC:SPORT -> DST:DPORT is the connection as the proxy sees it (router's SNAT address -> proxy).
Prints one line: "found CLIENT_IP:PORT DEST_IP:PORT", "notfound", "timeout" or "bad REASON".
--replay sends the same v2 query a second time after the answer and prints "replay-answered" or
"replay-dropped" on a second line.
"""
import argparse
import hashlib
import hmac
import ipaddress
import os
import socket
import struct
import time


def key_bytes(path):
    data = open(path, "rb").read()
    return data[:-1] if data.endswith(b"\n") else data


def addr16(ip):
    a = ipaddress.ip_address(ip)
    return a.packed + bytes(16 - len(a.packed))


def v2_query(key, src, sport, dst, dport):
    fam = ipaddress.ip_address(src).version
    nonce = os.urandom(8)
    head = struct.pack("!IHHQ8sBBH16s16sHH64s", 0x52504832, 2, 0x0001, int(time.time()), nonce, fam, 0, 0,
                       addr16(src), addr16(dst), sport, dport, bytes(64))
    return head + hmac.new(key, head, hashlib.sha256).digest(), nonce


def v2_parse(key, data, nonce):
    if len(data) != 160 or data[:4] != b"RPH2":
        return "bad size_or_magic"
    if not hmac.compare_digest(hmac.new(key, data[:128], hashlib.sha256).digest(), data[128:]):
        return "bad hmac"
    magic, ver, flags, ts, rnonce, fam, ilen, res, s, d, sp, dp = struct.unpack_from("!IHHQ8sBBH16s16sHH", data, 0)
    if rnonce != nonce:
        return "bad nonce"
    if abs(ts - time.time()) > 30:
        return "bad timestamp"
    if flags == 0x0022:
        return "notfound"
    if flags != 0x0012:
        return f"bad flags {flags:#x}"
    n = 4 if fam == 4 else 16
    return f"found {fmt(s[:n], sp)} {fmt(d[:n], dp)}"


def legacy_query(secret, src, sport, dst, dport):
    cookie = int.from_bytes(os.urandom(4), "big")
    q = struct.pack("!IIIHH4s4sHH32s6s", 0x52504844, cookie, secret, 0x0402, 0x0001,
                    socket.inet_aton(src), socket.inet_aton(dst), sport, dport, b"", b"")
    return q, cookie


def legacy_parse(data, cookie):
    if len(data) != 66:
        return f"bad size {len(data)}"
    magic, rcookie, secret, ver, flags, s, d, sp, dp = struct.unpack_from("!IIIHH4s4sHH", data, 0)
    if magic != 0x52504844 or rcookie != cookie or ver != 0x0402:
        return "bad magic_cookie_or_version"
    if flags == 0x0022:
        return "notfound"
    if flags != 0x0012:
        return f"bad flags {flags:#x}"
    return f"found {fmt(s, sp)} {fmt(d, dp)}"


def fmt(raw, port):
    ip = ipaddress.ip_address(raw)
    return f"[{ip}]:{port}" if ip.version == 6 else f"{ip}:{port}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("helper")
    ap.add_argument("src"); ap.add_argument("sport", type=int)
    ap.add_argument("dst"); ap.add_argument("dport", type=int)
    ap.add_argument("--key"); ap.add_argument("--legacy-secret", type=int)
    ap.add_argument("--port", type=int, default=114)
    ap.add_argument("--timeout", type=float, default=2.0)
    ap.add_argument("--replay", action="store_true")
    a = ap.parse_args()
    fam = socket.AF_INET6 if ":" in a.helper else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.settimeout(a.timeout)
    s.connect((a.helper, a.port))
    if a.key:
        key = key_bytes(a.key)
        q, nonce = v2_query(key, a.src, a.sport, a.dst, a.dport)
        parse = lambda d: v2_parse(key, d, nonce)
    else:
        q, cookie = legacy_query(a.legacy_secret or 0, a.src, a.sport, a.dst, a.dport)
        parse = lambda d: legacy_parse(d, cookie)
    s.send(q)
    try:
        print(parse(s.recv(2048)), flush=True)
    except (socket.timeout, ConnectionRefusedError):
        print("timeout", flush=True)
        return
    if a.replay:
        s.send(q)
        try:
            s.recv(2048)
            print("replay-answered", flush=True)
        except (socket.timeout, ConnectionRefusedError):
            print("replay-dropped", flush=True)


if __name__ == "__main__":
    main()
