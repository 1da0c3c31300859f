"""mode remote-udp on loopback: a fake smtpgate-helper written here (struct and hmac, independent of the
Swift codec) answers the proxy's queries; the proxy must connect only where a valid reply from the address
it asked says, and answer 4xx otherwise."""
import hashlib
import hmac
import os
import socket
import struct
import threading
import time

from conftest import HOST, PROXY_NAME, close_quietly, free_port, start

PN = PROXY_NAME
LEGACY = struct.Struct("!IIIHH4s4sHH32s6s")   # 66 bytes, helper-protocol.md
V2_HEAD = struct.Struct("!IHHQQBBH16s16sHH64s")  # 128 bytes before the HMAC
KEY = b"0123456789abcdef-test-key"


class FakeHelper:
    """Answers each query with `answer(query) -> bytes or None`, from its own socket (or `reply_from`)."""

    def __init__(self, answer, reply_from=None):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((HOST, 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.answer = answer
        self.reply_from = reply_from
        self.queries = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stop.is_set():
            try:
                data, peer = self.sock.recvfrom(2048)
            except socket.timeout:
                continue
            self.queries.append(data)
            reply = self.answer(data)
            if reply is not None:
                (self.reply_from or self.sock).sendto(reply, peer)

    def close(self):
        self.stop.set()
        self.thread.join(2)
        close_quietly(self.sock)


def legacy_reply(query, client, dest, ident=b"", found=True, cookie=None):
    magic, qcookie, secret, version, flags, src, dst, sport, dport, _, _ = LEGACY.unpack(query)
    assert (magic, version, flags) == (0x52504844, 0x0402, 0x0001)
    if not found:
        return LEGACY.pack(magic, qcookie, secret, version, 0x0022, src, dst, sport, dport, b"", b"")
    return LEGACY.pack(magic, qcookie if cookie is None else cookie, secret, version, 0x0012,
                       socket.inet_aton(client[0]), socket.inet_aton(dest[0]), client[1], dest[1], ident, b"")


def v2_reply(query, client, dest, sign_key=KEY, ident=b""):
    head, mac = query[:128], query[128:]
    assert hmac.compare_digest(mac, hmac.new(KEY, head, hashlib.sha256).digest())
    magic, version, flags, ts, nonce, family, _, _, _, _, _, _, _ = V2_HEAD.unpack(head)
    assert (magic, version, flags, family) == (0x52504832, 2, 0x0001, 4)
    assert abs(ts - time.time()) < 5
    body = V2_HEAD.pack(magic, version, 0x0012, int(time.time()), nonce, 4, len(ident), 0,
                        socket.inet_aton(client[0]), socket.inet_aton(dest[0]), client[1], dest[1], ident)
    return body + hmac.new(sign_key, body, hashlib.sha256).digest()


def remote_proxy(proxy, helper, **options):
    opts = dict(mode="remote-udp", fixed_server=None, remote_port=helper.port, timeout_lookup=0.3,
                remote_udp_retries=2)
    opts.update(options)
    return proxy(free_port(), **opts)


def send_one(p):
    c = start(p, "EHLO customer.test")
    assert c.cmd("MAIL FROM:<a@customer.test>").code == 250
    assert c.cmd("RCPT TO:<b@example.test>").code == 250
    assert c.cmd("DATA").code == 354
    c.send(b"Subject: via helper\r\n\r\nhello\r\n.\r\n")
    assert c.read_reply().code == 250
    assert c.cmd("QUIT").code == 221
    return c


def test_legacy_found_relays_to_the_real_destination_and_logs_the_real_client(proxy, mta):
    helper = FakeHelper(lambda q: legacy_reply(q, ("192.0.2.7", 4242), (HOST, mta.port), ident=b"alice\x00"))
    try:
        p = remote_proxy(proxy, helper, remote_udp_secret=4711)
        c = send_one(p)
        mta.wait_messages(1)
        opened = p.wait_event("open")[0]
        cport = c.sock.getsockname()[1]
        assert opened.get("client") == "192.0.2.7:4242"
        assert opened.get("nat_source") == f"{HOST}:{cport}"
        assert opened.get("ident") == "alice"
        assert opened.get("dest") == f"{HOST}:{mta.port}"
        # the query: what the proxy saw, with the configured secret, exactly 66 bytes
        q = helper.queries[0]
        magic, _, secret, version, flags, src, dst, sport, dport, ident, mac = LEGACY.unpack(q)
        assert (magic, secret, version, flags) == (0x52504844, 4711, 0x0402, 0x0001)
        assert (socket.inet_ntoa(src), sport, socket.inet_ntoa(dst), dport) == (HOST, cport, HOST, p.port)
        assert ident == b"\x00" * 32 and mac == b"\x00" * 6
    finally:
        helper.close()


def test_notfound_gives_421_and_no_connection(proxy, mta):
    helper = FakeHelper(lambda q: legacy_reply(q, None, None, found=False))
    try:
        p = remote_proxy(proxy, helper)
        c = p.connect()
        text = c.read_reply().text
        assert text == f"421 4.4.3 {PN}: cannot find the destination: the NAT helper has no entry for this connection"
        c.wait_closed()
        assert p.wait_event("lookup_failed")[0].get("error") == f"helper at {HOST}:{helper.port} has no NAT entry for this connection"
        assert mta.conns == []
    finally:
        helper.close()


def test_silent_helper_is_asked_retries_times_then_421(proxy, mta):
    helper = FakeHelper(lambda q: None)
    try:
        p = remote_proxy(proxy, helper, remote_udp_retries=3, timeout_lookup=0.3)
        c = p.connect()
        began = time.monotonic()
        assert c.read_reply(timeout=5).text == f"421 4.4.3 {PN}: cannot find the destination: the NAT helper did not answer"
        assert 0.8 <= time.monotonic() - began < 3
        assert len(helper.queries) == 3
        assert len(set(helper.queries)) == 1, "0x0402 retries resend the same packet"
        assert p.wait_event("lookup_failed")[0].get("error") == f"helper at {HOST}:{helper.port} did not answer"
        assert mta.conns == []
    finally:
        helper.close()


def test_v2_retry_is_a_fresh_query_so_a_lost_answer_is_recovered(proxy, mta, tmp_path):
    """The first answer is lost on the way back; a helper with replay protection would drop the same
    packet again, so the retry must carry a new nonce and still be signed."""
    seen = []

    def answer(q):
        seen.append(q)
        if len(seen) == 1:
            return None
        return v2_reply(q, ("192.0.2.8", 5151), (HOST, mta.port))

    helper = FakeHelper(answer)
    try:
        p = remote_proxy(proxy, helper, remote_udp_key_file=_key_file(tmp_path), remote_udp_retries=3)
        send_one(p)
        mta.wait_messages(1)
        assert len(seen) == 2
        nonces = {V2_HEAD.unpack(q[:128])[4] for q in seen}
        assert len(nonces) == 2, "a v2 retry must carry a new nonce"
        for q in seen:
            assert hmac.compare_digest(q[128:], hmac.new(KEY, q[:128], hashlib.sha256).digest())
    finally:
        helper.close()


def assert_reply_ignored(p, mta):
    """The helper answered, but not acceptably: the lookup times out and nothing is forwarded."""
    c = p.connect()
    assert c.read_reply(timeout=5).text == f"421 4.4.3 {PN}: cannot find the destination: the NAT helper did not answer"
    assert mta.conns == []


def test_reply_from_another_port_is_ignored(proxy, mta):
    forger = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    forger.bind((HOST, 0))
    helper = FakeHelper(lambda q: legacy_reply(q, ("192.0.2.7", 4242), (HOST, mta.port)), reply_from=forger)
    try:
        assert_reply_ignored(remote_proxy(proxy, helper), mta)
    finally:
        helper.close()
        close_quietly(forger)


def test_reply_with_another_cookie_is_ignored(proxy, mta):
    helper = FakeHelper(lambda q: legacy_reply(q, ("192.0.2.7", 4242), (HOST, mta.port), cookie=0xDEADBEEF))
    try:
        assert_reply_ignored(remote_proxy(proxy, helper), mta)
    finally:
        helper.close()


def _key_file(tmp_path, mode=0o600):
    path = tmp_path / "helper.key"
    path.write_bytes(KEY + b"\n")
    os.chmod(path, mode)
    return path


def test_v2_found_with_key_file(proxy, mta, tmp_path):
    helper = FakeHelper(lambda q: v2_reply(q, ("192.0.2.8", 5151), (HOST, mta.port)))
    try:
        p = remote_proxy(proxy, helper, remote_udp_key_file=_key_file(tmp_path))
        send_one(p)
        mta.wait_messages(1)
        assert p.wait_event("open")[0].get("client") == "192.0.2.8:5151"
        assert len(helper.queries[0]) == 160
    finally:
        helper.close()


def test_v2_reply_under_another_key_is_ignored(proxy, mta, tmp_path):
    sent = []

    def answer(q):
        reply = v2_reply(q, ("192.0.2.8", 5151), (HOST, mta.port), sign_key=b"not-the-key-at-all!!")
        sent.append(reply)
        return reply

    helper = FakeHelper(answer)
    try:
        assert_reply_ignored(remote_proxy(proxy, helper, remote_udp_key_file=_key_file(tmp_path)), mta)
        assert len(sent) == 2, "the helper must have answered every query, under the wrong key"
    finally:
        helper.close()


def test_key_file_readable_by_others_is_refused(proxy, mta, tmp_path):
    import subprocess
    from conftest import SMTPGATE_BIN
    key = _key_file(tmp_path, mode=0o644)
    p = proxy(free_port(), start=False, mode="remote-udp", fixed_server=None, remote_udp_key_file=key)
    r = subprocess.run([SMTPGATE_BIN, "check-config", str(p.config_path)], capture_output=True, text=True, timeout=10)
    assert r.returncode == 1
    assert f"remote_udp_key_file {key}: readable or writable by group or other (mode 644)" in r.stderr


def test_key_file_is_read_only_in_remote_udp_mode(proxy, mta, tmp_path):
    import subprocess
    from conftest import SMTPGATE_BIN
    p = proxy(mta.port, start=False, remote_udp_key_file=tmp_path / "absent.key")
    r = subprocess.run([SMTPGATE_BIN, "check-config", str(p.config_path)], capture_output=True, text=True, timeout=10)
    assert r.returncode == 0, r.stderr


def test_max_per_host_counts_the_real_client(proxy, mta):
    clients = iter([("192.0.2.7", 1000), ("192.0.2.7", 1001), ("192.0.2.9", 1002)])
    helper = FakeHelper(lambda q: legacy_reply(q, next(clients), (HOST, mta.port)))
    try:
        p = remote_proxy(proxy, helper, max_per_host=1)
        first = p.connect()
        assert first.greeting().code == 220
        second = p.connect()
        assert second.read_reply().text == f"554 5.7.0 {PN}: too many connections from your host (max_per_host 1)"
        third = p.connect()
        assert third.greeting().code == 220
        reject = p.wait_event("reject")[0]
        assert (reject.get("client"), reject.get("reason")) == ("192.0.2.7:1001", "max_per_host")
        for c in (first, third):
            assert c.cmd("QUIT").code == 221
    finally:
        helper.close()
