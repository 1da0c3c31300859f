"""Addresses and privileges: IPv6 end to end, outgoing_addr, and relaying after set_user drops root."""
import os
import pwd
import smtplib
import socket
import subprocess

import pytest
from aiosmtpd.controller import Controller

from conftest import SMTPGATE_BIN, has_ipv6_loopback, wait_until

BODY = b"Subject: addresses\r\n\r\nline one\r\n.leading dot\r\n"


class _Store:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((session.peer, envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content))
        return "250 2.0.0 stored"


def _send(host, port, frm="a@customer.test", to=("b@example.test",)):
    with smtplib.SMTP(host, port, local_hostname="client.customer.test", timeout=10) as s:
        s.sendmail(frm, list(to), BODY)


def _free_port6():
    with socket.socket(socket.AF_INET6) as s:
        s.bind(("::1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(not has_ipv6_loopback(), reason="no IPv6 loopback here")
def test_ipv6_listener_and_ipv6_upstream(proxy):
    store = _Store()
    port = _free_port6()
    ctl = Controller(store, hostname="::1", port=port, decode_data=False)
    ctl.start()
    try:
        p = proxy(port, bind_address="::1", fixed_server="::1")
        _send("::1", p.port)
        wait_until(lambda: store.messages, 5, what="message stored over IPv6")
        peer, frm, rcpts, data = store.messages[0]
        assert peer[0] == "::1"
        assert (frm, rcpts) == ("a@customer.test", ["b@example.test"])
        assert data.replace(b"\r\n", b"\n").endswith(BODY.replace(b"\r\n", b"\n").split(b"\n\n", 1)[1])
        opened = p.wait_event("open")[0]
        assert opened.get("client").startswith("[::1]:")
        assert opened.get("local") == f"[::1]:{p.port}"
        assert opened.get("dest") == f"[::1]:{port}"
        txn = p.wait_event("transaction")[0]
        assert txn.get("result") == "250"
    finally:
        ctl.stop()


def test_outgoing_addr_is_the_source_the_mta_sees(proxy, mta):
    p = proxy(mta.port, outgoing_addr="127.0.0.2")
    _send("127.0.0.1", p.port)
    mta.wait_messages(1)
    peers = [c.peer[0] for c in mta.conns if c.peer]
    assert peers and all(a == "127.0.0.2" for a in peers), peers


@pytest.mark.skipif(os.geteuid() != 0, reason="dropping privileges needs root")
def test_set_user_drops_root_and_still_relays(proxy, mta):
    nobody = pwd.getpwnam("nobody")
    p = proxy(mta.port, set_user="nobody", set_group="nogroup")
    p.wait_event("start")
    with open(f"/proc/{p.pid}/status") as f:
        ids = {l.split(":")[0]: l.split()[1:] for l in f if l.startswith(("Uid:", "Gid:"))}
    assert ids["Uid:"[:-1]] == [str(nobody.pw_uid)] * 4
    _send("127.0.0.1", p.port)
    mta.wait_messages(1)
    txn = p.wait_event("transaction")[0]
    assert txn.get("result") == "250"
    assert txn.getall("rcpt") == ["<b@example.test>:250"]


@pytest.mark.skipif(os.geteuid() != 0, reason="dropping privileges needs root")
def test_unknown_set_user_refuses_to_start_and_leaves_no_pidfile(proxy, mta):
    p = proxy(mta.port, start=False, set_user="no-such-user-smtpgate")
    r = subprocess.run([SMTPGATE_BIN, "run", "--config", str(p.config_path), "--log-file", str(p.log_path)],
                       capture_output=True, text=True, timeout=15)
    assert r.returncode == 1
    assert "set_user: no user named 'no-such-user-smtpgate'" in r.stderr
    assert not p.pidfile.exists()
