"""A third host on the proxy's segment that forges smtpgate-helper replies (lab fault injection).

It sniffs the proxy's helper queries (UDP to port 114) on IFACE (the lab's bridge floods every frame
to it) and answers each at once with a FOUND reply pointing at --dest:
  * from its own address (--own), with the query's cookie/nonce and, for v2, a valid HMAC made with
    --key (as another router that shares the key could): the proxy must refuse a reply from an
    address it did not ask;
  * for v2 also with the router's address as source (--spoof, sent with IP_TRANSPARENT) and an HMAC
    made with a wrong key: the proxy must refuse a reply that fails authentication.
Every forged datagram is counted in --count-file ("N" on one line).  Runs at most --lifetime seconds.
"""
import argparse
import hashlib
import hmac
import socket
import struct
import time

ETH_P_IP = 0x0800
IP_TRANSPARENT = 19


def key_bytes(path):
    data = open(path, "rb").read()
    return data[:-1] if data.endswith(b"\n") else data


def legacy_reply(q, client, dest):
    magic, cookie, secret, version, flags = struct.unpack_from("!IIIHH", q, 0)
    return struct.pack("!IIIHH4s4sHH32s6s", magic, cookie, secret, version, 0x0012,
                       socket.inet_aton(client), socket.inet_aton(dest), 40000, 25, b"", b"")


def v2_reply(q, client, dest, key):
    nonce = q[16:24]
    head = struct.pack("!IHHQ8sBBH16s16sHH64s", 0x52504832, 2, 0x0012, int(time.time()), nonce, 4, 0, 0,
                       socket.inet_aton(client) + bytes(12), socket.inet_aton(dest) + bytes(12),
                       40000, 25, bytes(64))
    return head + hmac.new(key, head, hashlib.sha256).digest()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--iface", required=True)
    ap.add_argument("--own", required=True)
    ap.add_argument("--spoof", required=True)
    ap.add_argument("--client", required=True)
    ap.add_argument("--dest", required=True)
    ap.add_argument("--key")
    ap.add_argument("--count-file", required=True)
    ap.add_argument("--lifetime", type=float, default=60)
    a = ap.parse_args()
    key = key_bytes(a.key) if a.key else None
    sniff = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_IP))
    sniff.bind((a.iface, 0))
    sniff.settimeout(0.5)
    own = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    own.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    own.bind((a.own, 114))
    spoof = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    spoof.setsockopt(socket.SOL_IP, IP_TRANSPARENT, 1)
    spoof.bind((a.spoof, 114))
    count = 0
    open(a.count_file, "w").write("0\n")
    print("ready", flush=True)
    deadline = time.monotonic() + a.lifetime
    while time.monotonic() < deadline:
        try:
            frame = sniff.recv(65535)
        except socket.timeout:
            continue
        ip = frame[14:]
        if len(ip) < 28 or ip[9] != 17:
            continue
        ihl = (ip[0] & 0x0F) * 4
        src = socket.inet_ntoa(ip[12:16])
        sport, dport = struct.unpack_from("!HH", ip, ihl)
        payload = ip[ihl + 8:]
        if dport != 114 or src in (a.own, a.spoof):
            continue
        sent = []
        if len(payload) == 66 and payload[:4] == b"RPHD":
            own.sendto(legacy_reply(payload, a.client, a.dest), (src, sport)); sent.append("own")
        elif len(payload) == 160 and payload[:4] == b"RPH2":
            if key:
                own.sendto(v2_reply(payload, a.client, a.dest, key), (src, sport)); sent.append("own")
            spoof.sendto(v2_reply(payload, a.client, a.dest, b"not-the-key-" * 3), (src, sport))
            sent.append("spoofed")
        else:
            continue
        count += len(sent)
        open(a.count_file, "w").write(f"{count}\n")
        print(f"query from {src}:{sport} ({len(payload)} bytes): forged {','.join(sent)}", flush=True)


if __name__ == "__main__":
    main()
