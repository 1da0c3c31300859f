"""smtp-gated's process options with the real daemon (issue 12): ``priority`` and the ``limit_*`` resource
limits are in force once the daemon runs (read back from /proc), and ``check-config`` names the tuning
options that have no effect here and refuses ``chroot_path`` with what to do instead.
"""
import subprocess

from conftest import SMTPGATE_BIN


def proc_limits(pid):
    out = {}
    with open(f"/proc/{pid}/limits") as f:
        for line in f.readlines()[1:]:
            name, soft = line[:26].strip(), line[26:47].strip()
            out[name] = soft
    return out


def nice(pid):
    with open(f"/proc/{pid}/stat") as f:
        # the fields after the command name (which is in parentheses and may hold spaces)
        rest = f.read().rsplit(")", 1)[1].split()
    return int(rest[16])


def test_priority_and_resource_limits_are_applied_at_start(proxy, mta):
    p = proxy(mta.port, priority=7, limit_core_size=0, limit_fsize="2G", limit_virt_size=-1)
    assert nice(p.proc.pid) == 7
    limits = proc_limits(p.proc.pid)
    assert limits["Max core file size"] == "0", limits
    assert limits["Max file size"] == str(2 << 30), limits
    assert limits["Max address space"] == "unlimited", "-1 leaves the inherited limit"
    with p.connect() as c:
        assert c.read_reply().code == 220


def test_check_config_names_what_has_no_effect_and_refuses_chroot(tmp_path):
    cfg = tmp_path / "smtp-gated.conf"
    cfg.write_text("mode fixed\nfixed_server 127.0.0.1\nbuffer_size 1516\npid_hash_size 4096\nlocale pl_PL\n")
    r = subprocess.run([SMTPGATE_BIN, "check-config", str(cfg)], capture_output=True, text=True, timeout=10)
    assert r.returncode == 0, r.stderr
    warned = [l for l in r.stderr.splitlines() if "has no effect in SMTPGate" in l]
    assert [l.split(": warning: ", 1)[1].split(" has")[0] for l in warned] == ["buffer_size", "pid_hash_size", "locale"], r.stderr
    cfg.write_text("mode fixed\nfixed_server 127.0.0.1\nchroot_path /var/empty\n")
    r = subprocess.run([SMTPGATE_BIN, "check-config", str(cfg)], capture_output=True, text=True, timeout=10)
    assert r.returncode != 0
    assert f"{cfg}:3: option 'chroot_path': is refused:" in r.stderr and "ProtectSystem=" in r.stderr, r.stderr
