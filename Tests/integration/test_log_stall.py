"""A log reader that stalls costs log lines, never relaying.  smtpgate logs to
standard error, a pipe nobody reads: once the pipe and the log queue
(``--log-queue``, here its minimum) are full, every session still gets its
greeting and its message through; the lines that did not fit are dropped whole
and, once the pipe is read again, one ``log_dropped count=N`` line stands for
them, so the lines written and the ones counted add up to every line logged.
Nor does a stalled reader hold up SIGTERM: the last lines get about 2 s.
"""

import glob
import signal
import subprocess
import threading
import time

import pytest

from conftest import (IO_TIMEOUT, SMTPGATE_BIN, Proxy, parse_json_line, parse_text_line, port_listening,
                      wait_until)

QUEUE_BYTES = 65536
# Each session logs an open, a transaction and a close line, some 600 bytes (more in JSON): 800 sessions
# log nearly four times what the pipe and the queue hold.
SESSIONS = 800
SESSION_LINES = ("open", "transaction", "close")
BODY = b"Subject: stall\r\n\r\nthe log reader is asleep\r\n.\r\n"


def relay_one(p, n):
    with p.connect() as c:
        assert c.greeting().code == 220, f"session {n}: no greeting"
        assert c.cmd("EHLO stall.test").code == 250
        assert c.cmd(f"MAIL FROM:<s{n}@stall.test>").code == 250
        assert c.cmd("RCPT TO:<rcpt@stall.test>").code == 250
        assert c.cmd("DATA").code == 354
        c.send(BODY)
        assert c.read_reply().code == 250, f"session {n}: message not accepted"
        assert c.cmd("QUIT").code == 221
        c.wait_closed()


class PipeReader(threading.Thread):
    """Reads the proxy's stderr to EOF once started."""

    def __init__(self, pipe):
        super().__init__(name="stderr-reader", daemon=True)
        self.pipe = pipe
        self.lock = threading.Lock()
        self.data = bytearray()

    def run(self):
        while chunk := self.pipe.read1(65536):
            with self.lock:
                self.data += chunk

    def text(self):
        with self.lock:
            return bytes(self.data).decode("latin-1")


def blocked_in_pipe_write(pid):
    """Whether a thread of process ``pid`` sleeps in the kernel's pipe write (``anon_pipe_write`` or
    ``pipe_write``, by kernel version)."""
    for wchan in glob.glob(f"/proc/{pid}/task/*/wchan"):
        try:
            with open(wchan) as f:
                if "pipe_write" in f.read():
                    return True
        except OSError:
            pass
    return False


def start_stalled(tmp_path, upstream_port, log_format="text"):
    """smtpgate with its standard error to a pipe that is not read (until the test says so)."""
    p = Proxy(tmp_path, upstream_port, {})
    proc = subprocess.Popen(
        [SMTPGATE_BIN, "run", "--config", str(p.config_path), "--log-format", log_format,
         "--log-queue", str(QUEUE_BYTES)],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    wait_until(lambda: proc.poll() is not None or port_listening(p.port), 10, what="smtpgate listening")
    if proc.poll() is not None:
        proc.stderr.close()
        pytest.fail(f"smtpgate exited with {proc.returncode} at start-up")
    return p, proc


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_stalled_log_reader_drops_lines_not_sessions(mta, tmp_path, log_format):
    p, proc = start_stalled(tmp_path, mta.port, log_format)
    reader = PipeReader(proc.stderr)
    try:
        for n in range(SESSIONS):
            relay_one(p, n)
        assert len(mta.wait_messages(SESSIONS)) == SESSIONS

        reader.start()
        wait_until(lambda: "log_dropped" in reader.text(), 10, what="a log_dropped line once the pipe is read")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(IO_TIMEOUT) == 0
        reader.join(IO_TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(IO_TIMEOUT)
        if reader.is_alive():
            reader.join(IO_TIMEOUT)
        proc.stderr.close()

    text = reader.text()
    assert text.endswith("\n")
    parse = parse_json_line if log_format == "json" else parse_text_line
    records = [parse(line) for line in text.split("\n")[:-1]]
    (dropped,) = [r for r in records if r.event == "log_dropped"]
    assert dropped.level == "warning" and list(dropped.fields) == ["count"]
    count = int(dropped.get("count"))
    assert count > 0
    session_lines = sum(1 for r in records if r.event in SESSION_LINES)
    assert session_lines + count == SESSIONS * len(SESSION_LINES)
    assert [r.event for r in records if r.event not in SESSION_LINES + ("log_dropped",)] == [
        "start", "listening", "draining", "stop"]


def test_stalled_log_reader_does_not_hold_up_shutdown(mta, tmp_path):
    p, proc = start_stalled(tmp_path, mta.port)
    try:
        # More than the pipe holds: the log writer sleeps in write(2) and the last lines wait in the queue.
        for n in range(180):
            relay_one(p, n)
        wait_until(lambda: blocked_in_pipe_write(proc.pid), 5, what="the log writer blocked on the full pipe")
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        # They wait about 2 s for the reader, then smtpgate exits without them.
        assert proc.wait(IO_TIMEOUT) == 0
        assert time.monotonic() - started < 5
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(IO_TIMEOUT)
        proc.stderr.close()
