"""A service-manager STAND-IN (a tiny systemd) for liftgate's tests; not a real service manager.

::

    service.py start   --pidfile P --logfile L -- ARGV...   # detached, returns at once
    service.py stop    --pidfile P [--timeout 10]
    service.py restart --pidfile P --logfile L [--timeout 10] -- ARGV...
    service.py status  --pidfile P                          # 0 running, 3 not running

``start`` spawns ARGV in a new session with stdin from /dev/null and stdout/stderr
appended to the log file, writes the pid file atomically and exits 0 at once; it does
nothing (exit 0) when the pid file names a live process. ``stop`` sends SIGTERM to the
process group, waits up to ``--timeout`` seconds, then SIGKILLs it; it removes the pid
file and exits 0 (also when nothing was running). A zombie (an exited process nobody
reaped yet) counts as not running. Standalone: only the standard library.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

__all__ = ["is_running", "main", "read_pid", "start", "stop"]


def read_pid(pidfile: Path) -> int | None:
    try:
        return int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def is_running(pidfile: Path) -> int | None:
    """The pid of the running service, or None."""
    pid = read_pid(pidfile)
    return pid if pid is not None and pid > 0 and _alive(pid) else None


def start(pidfile: Path, logfile: Path, argv: list[str]) -> int:
    if (pid := is_running(pidfile)) is not None:
        print(f"already running (pid {pid})")
        return 0
    if not argv:
        print("start: no command given after --", file=sys.stderr)
        return 2
    logfile.parent.mkdir(parents=True, exist_ok=True)
    pidfile.parent.mkdir(parents=True, exist_ok=True)
    with open(logfile, "ab") as log:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )
    tmp = pidfile.with_name(f".{pidfile.name}.{os.getpid()}.tmp")
    tmp.write_text(f"{proc.pid}\n")
    os.replace(tmp, pidfile)
    print(f"started (pid {proc.pid})")
    return 0


def _signal(pid: int, signum: int) -> None:
    try:
        if os.getpgid(pid) == pid:
            os.killpg(pid, signum)
        else:
            os.kill(pid, signum)
    except ProcessLookupError:
        pass


def stop(pidfile: Path, timeout: float = 10.0) -> int:
    pid = is_running(pidfile)
    if pid is not None:
        _signal(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _alive(pid):
            print(f"pid {pid} still running after {timeout:g}s: SIGKILL", file=sys.stderr)
            _signal(pid, signal.SIGKILL)
            deadline = time.monotonic() + 5
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
        print(f"stopped (pid {pid})")
    else:
        print("not running")
    pidfile.unlink(missing_ok=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    command: list[str] = []
    if "--" in args:
        cut = args.index("--")
        args, command = args[:cut], args[cut + 1 :]
    p = argparse.ArgumentParser(prog="service.py", description="service manager stand-in")
    p.add_argument("action", choices=["start", "stop", "restart", "status"])
    p.add_argument("--pidfile", type=Path, required=True)
    p.add_argument("--logfile", type=Path)
    p.add_argument("--timeout", type=float, default=10.0)
    ns = p.parse_args(args)
    if ns.action in ("start", "restart") and ns.logfile is None:
        p.error(f"{ns.action} needs --logfile")
    if ns.action == "status":
        pid = is_running(ns.pidfile)
        print(f"running (pid {pid})" if pid else "not running")
        return 0 if pid else 3
    if ns.action in ("stop", "restart"):
        stop(ns.pidfile, ns.timeout)
    if ns.action in ("start", "restart"):
        return start(ns.pidfile, ns.logfile, command)
    return 0


if __name__ == "__main__":
    sys.exit(main())
