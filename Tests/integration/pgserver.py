"""A throw-away PostgreSQL server for the pool tests: Debian's binaries run as ``nobody`` (PostgreSQL refuses
root), data and socket in a private temporary directory, no TCP (``listen_addresses=''``), trust for the
``smtpgate`` superuser. Starting fails with the server's own log rather than skipping anything."""

import os
import shutil
import subprocess
import tempfile

BIN = "/usr/lib/postgresql/15/bin"
NOBODY = 65534


class PostgresServer:
    def __init__(self):
        if not os.access(f"{BIN}/initdb", os.X_OK):
            raise RuntimeError(f"PostgreSQL is not installed ({BIN}/initdb missing): run scripts/deps.sh")
        # Not under pytest's tmp_path: that is root's and owner-only, and the server runs as nobody.
        self.dir = tempfile.mkdtemp(prefix="smtpgate-pg.")
        self.data = os.path.join(self.dir, "data")
        self.sock = os.path.join(self.dir, "sock")
        self.log = os.path.join(self.dir, "server.log")
        os.mkdir(self.sock)
        if os.geteuid() == 0:
            for p in (self.dir, self.sock):
                os.chown(p, NOBODY, NOBODY)
        self._run([f"{BIN}/initdb", "-D", self.data, "-U", "smtpgate", "--auth=trust", "-E", "UTF8", "--no-sync"])
        self.start()
        self._run([f"{BIN}/createdb", "-h", self.sock, "-U", "smtpgate", "smtpgate"])

    @property
    def url(self):
        return f"postgresql:///smtpgate?host={self.sock}&user=smtpgate"

    def start(self):
        try:
            self._run([f"{BIN}/pg_ctl", "-D", self.data, "-l", self.log, "-w", "-t", "30",
                       "-o", f"-k {self.sock} -c listen_addresses='' -F", "start"])
        except RuntimeError as e:
            raise RuntimeError(f"{e}; server log: {self.server_log()[-1500:]}")

    def kill(self):
        """Immediate shutdown: every backend is killed at once and the next start recovers, as after a crash."""
        self._run([f"{BIN}/pg_ctl", "-D", self.data, "-m", "immediate", "-w", "-t", "30", "stop"])

    def psql(self, sql):
        return self._run([f"{BIN}/psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", self.sock, "-U", "smtpgate",
                          "-d", "smtpgate", "-c", sql])

    def server_log(self):
        try:
            with open(self.log, encoding="utf-8", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def destroy(self):
        subprocess.run(self._as_nobody([f"{BIN}/pg_ctl", "-D", self.data, "-m", "immediate", "-w", "stop"]),
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
        shutil.rmtree(self.dir, ignore_errors=True)

    @staticmethod
    def _as_nobody(argv):
        return ["/usr/sbin/runuser", "-u", "nobody", "--"] + argv if os.geteuid() == 0 else argv

    def _run(self, argv):
        # Output to a file, not a pipe: the server pg_ctl leaves running inherits its descriptors.
        with tempfile.TemporaryFile() as out:
            rc = subprocess.run(self._as_nobody(argv), stdin=subprocess.DEVNULL, stdout=out, stderr=out, timeout=120,
                                cwd="/").returncode
            out.seek(0)
            text = out.read().decode("utf-8", "replace")
        if rc != 0:
            raise RuntimeError(f"{os.path.basename(argv[0])} failed ({rc}): {text[-1500:]}")
        return text
