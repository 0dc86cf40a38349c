"""Test helpers: snapshots of folders and a CLI runner."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any


def snapshot(root: Path, *, skip: tuple[str, ...] = ()) -> dict[str, str]:
    """Every entry below ``root``: relative path -> kind, mode and content digest."""
    out: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in skip)
        for name in sorted(dirnames + filenames):
            path = Path(dirpath) / name
            rel = path.relative_to(root).as_posix()
            if rel.split("/")[0] in skip:
                continue
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                out[rel] = "link:" + os.readlink(path)
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = f"dir:{stat.S_IMODE(st.st_mode):o}"
            elif not stat.S_ISREG(st.st_mode):  # a fifo or device: never opened
                out[rel] = f"special:{st.st_mode:o}:{st.st_ino}"
            else:
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
                out[rel] = f"file:{stat.S_IMODE(st.st_mode):o}:{digest}"
    return out


def run_cli(
    args: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "liftgate", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def cli_json(
    args: list[str], cwd: Path, env: dict[str, str] | None = None
) -> tuple[int, dict[str, Any]]:
    proc = run_cli([*args, "--json"], cwd, env)
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one JSON line, got {proc.stdout!r} / {proc.stderr!r}"
    return proc.returncode, json.loads(lines[0])


def start_paused(
    args: list[str], cwd: Path, point: str, marker_dir: Path, timeout: float = 60
) -> tuple[subprocess.Popen[str], Path]:
    """Start the CLI so that it pauses at failpoint ``point``; return once it is there.

    Remove the returned marker file to let it go on."""
    import time

    marker = marker_dir / f"{point}.paused"
    proc = subprocess.Popen(
        [sys.executable, "-m", "liftgate", *args],
        cwd=cwd,
        env={
            **os.environ,
            "LIFTGATE_FAILPOINTS": f"{point}=pause",
            "LIFTGATE_FAILPOINT_DIR": str(marker_dir),
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + timeout
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert marker.exists(), f"the command never reached {point}"
    return proc, marker
