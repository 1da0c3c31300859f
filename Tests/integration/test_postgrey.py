"""Greylisting through the real postgrey (Debian's package, a child of the test on 127.0.0.1) with
``check_policy_service``: the first attempt is deferred with postgrey's text, a retry after the delay is
relayed and the stored message carries postgrey's X-Greylist header; with postgrey gone mail flows (the
default action DUNNO) and the failure is logged.
"""

import os
import signal
import socket
import subprocess
import time

import pytest

from conftest import Client, free_port, wait_until
from scanners import harmless_message, send_message

POSTGREY = "/usr/sbin/postgrey"


@pytest.fixture
def postgrey(tmp_path):
    if not os.path.exists(POSTGREY):
        pytest.fail("postgrey is not installed (scripts/deps.sh installs Debian's postgrey)")
    port = free_port()
    db = tmp_path / "postgrey"
    db.mkdir()
    user = subprocess.run(["id", "-un"], capture_output=True, text=True).stdout.strip()
    group = subprocess.run(["id", "-gn"], capture_output=True, text=True).stdout.strip()
    proc = subprocess.Popen([POSTGREY, f"--inet=127.0.0.1:{port}", f"--dbdir={db}", "--delay=2", f"--pidfile={db}/pid",
                             f"--user={user}", f"--group={group}", "--whitelist-clients=/dev/null",
                             "--whitelist-recipients=/dev/null", "--hostname=gate.test"],
                            stdout=subprocess.DEVNULL, stderr=open(tmp_path / "postgrey.log", "wb"), start_new_session=True)

    def up():
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return True
        except OSError:
            return None
    wait_until(up, 20, what="postgrey listening")
    yield proc, port
    if proc.poll() is None:
        proc.kill()           # SIGTERM waits for idle clients to go; nothing is kept of it
    proc.wait(timeout=10)


def attempt(p, source, rcpt="bob@inbound.test"):
    c = Client(p.port, source=source)
    assert c.greeting().code == 220
    assert c.cmd("EHLO mail.customer.test").code == 250
    assert c.cmd("MAIL FROM:<alice@customer.test>").code == 250
    return c, c.cmd(f"RCPT TO:<{rcpt}>")


def test_first_attempt_is_greylisted_and_a_retry_after_the_delay_carries_x_greylist(proxy, mta, postgrey):
    _, port = postgrey
    p = proxy(mta.port, recipient_restrictions=f"check_policy_service {{ inet:127.0.0.1:{port}, timeout=5s }}, permit")
    c, r = attempt(p, "127.0.0.131")
    assert r.code == 450 and r.text.startswith("450 <bob@inbound.test>: Recipient address rejected: Greylisted"), r
    c.cmd("QUIT")
    (rej,) = p.wait_event("reject", command="rcpt")
    assert rej.get("rule") == f"recipient_restrictions check_policy_service inet:127.0.0.1:{port}", rej
    time.sleep(3)
    c, r = attempt(p, "127.0.0.131")
    assert r.code == 250, r
    assert c.cmd("DATA").code == 354
    c.send(b"Subject: greylisted\r\n\r\nbody\r\n.\r\n")
    assert c.read_reply().code == 250
    c.cmd("QUIT")
    (m,) = mta.wait_messages(1)
    first = m.content.split(b"\r\n", 1)[0]
    assert first.startswith(b"X-Greylist: delayed ") and b"postgrey" in first, m.content[:200]


def test_with_postgrey_gone_mail_flows_and_the_failure_is_logged(proxy, mta, postgrey):
    proc, port = postgrey
    p = proxy(mta.port, recipient_restrictions=f"check_policy_service {{ inet:127.0.0.1:{port}, timeout=2s, try_limit=1 }}")
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    c = Client(p.port, source="127.0.0.132")
    assert c.greeting().code == 220 and c.cmd("EHLO mail.customer.test").code == 250
    t0 = time.monotonic()
    assert send_message(c, harmless_message()).code == 250
    assert time.monotonic() - t0 < 5
    assert len(mta.wait_messages(1)) == 1
    (f,) = p.wait_event("policy_service_failed")
    assert f.get("text").endswith("; default_action DUNNO") and "refused" in f.get("text"), f
