"""What a valid file still cannot run with on this machine: check-config reports every such problem (an unknown
set_user or set_group, an action_script that is missing or not executable) with the file's name, prints no
configuration and exits 1, and ``run`` refuses to start with the same words, so a file check-config passes
starts.  Scanning with STARTTLS relayed is a warning in both.
"""

import subprocess

from conftest import SMTPGATE_BIN

BASE = "mode fixed\nfixed_server 127.0.0.1\nport 1\n"


def write(tmp_path, text):
    path = tmp_path / "host.conf"
    path.write_text(BASE + text)
    return path


def check_config(path):
    return subprocess.run([SMTPGATE_BIN, "check-config", str(path)], capture_output=True, text=True, timeout=20,
                          stdin=subprocess.DEVNULL)


def test_every_problem_is_reported_and_nothing_is_printed(tmp_path):
    script = tmp_path / "notify.sh"
    script.write_text("#!/bin/sh\nexit 0\n")
    script.chmod(0o644)
    path = write(tmp_path, f"set_user no-such-user-smtpgate\nset_group no-such-group-smtpgate\naction_script {script}\n")
    r = check_config(path)
    assert r.returncode == 1, r
    assert r.stdout == "", "no configuration is printed for a file run would refuse"
    assert r.stderr.splitlines() == [
        f"{path}: set_user: no user named 'no-such-user-smtpgate'",
        f"{path}: set_group: no group named 'no-such-group-smtpgate'",
        f"{path}: action_script {script}: is not executable",
    ], r.stderr


def test_a_missing_script_or_a_directory_is_named(tmp_path):
    r = check_config(write(tmp_path, f"action_script {tmp_path}/missing.sh\n"))
    assert r.returncode == 1 and f"action_script {tmp_path}/missing.sh: cannot use it: No such file or directory" in r.stderr, r
    r = check_config(write(tmp_path, f"action_script {tmp_path}\n"))
    assert r.returncode == 1 and f"action_script {tmp_path}: is not a regular file" in r.stderr, r


def test_run_refuses_what_check_config_reports(tmp_path):
    script = tmp_path / "notify.sh"
    script.write_text("#!/bin/sh\nexit 0\n")
    script.chmod(0o600)
    path = write(tmp_path, f"action_script {script}\n")
    r = subprocess.run([SMTPGATE_BIN, "run", "--config", str(path), "--log-file", str(tmp_path / "log")],
                       capture_output=True, text=True, timeout=15, stdin=subprocess.DEVNULL)
    assert r.returncode == 1
    assert f"smtpgate: {path}: action_script {script}: is not executable" in r.stderr, r.stderr
    script.chmod(0o755)
    r = check_config(path)
    assert r.returncode == 0, r.stderr
    assert f"\naction_script {script}\n" in r.stdout


def test_scanning_with_starttls_relayed_is_a_warning_of_check_config(tmp_path):
    r = check_config(write(tmp_path, f"antivirus_type clamd\nantivirus_path 127.0.0.1:3310\nspool_path {tmp_path}\n"))
    assert r.returncode == 0, r.stderr
    assert "warning: messages after STARTTLS are relayed encrypted and not scanned (forbid_starttls yes scans every message)" in r.stderr
    r = check_config(write(tmp_path, f"antivirus_type clamd\nantivirus_path 127.0.0.1:3310\nspool_path {tmp_path}\nforbid_starttls yes\n"))
    assert r.returncode == 0 and "STARTTLS" not in r.stderr, r.stderr


def test_a_reload_naming_a_script_that_cannot_run_is_refused_and_the_running_one_stays(proxy, mta, tmp_path):
    import signal
    from conftest import Client
    script = tmp_path / "notify.sh"
    script.write_text("#!/bin/sh\nexit 0\n")
    script.chmod(0o755)
    p = proxy(mta.port, action_script=str(script))
    p.options["action_script"] = str(tmp_path / "gone.sh")
    p.write_config()
    p.signal(signal.SIGHUP)
    (failed,) = p.wait_event("reload", result="failed")
    assert failed.get("error") == f"action_script {tmp_path}/gone.sh: cannot use it: No such file or directory", failed
    with Client(p.port) as c:
        assert c.greeting().code == 220, "the running configuration stays"
