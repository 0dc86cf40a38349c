"""Failpoints: named places where a test can make liftgate kill itself.

``LIFTGATE_FAILPOINTS`` holds a comma-separated list of names; when the process reaches one
of them it sends itself SIGKILL, exactly like a crash or an OOM kill. ``name@N`` fires on the
N-th time the point is reached. ``name=pause`` instead creates ``<name>.paused`` in
``LIFTGATE_FAILPOINT_DIR`` and waits (up to two minutes) until a test removes it — to stop a
server, say, at an exact moment. Unset (the default), every failpoint is a no-op.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

__all__ = ["ENV_VAR", "failpoint"]

ENV_VAR = "LIFTGATE_FAILPOINTS"

_hits: dict[str, int] = {}


def failpoint(name: str) -> None:
    spec = os.environ.get(ENV_VAR)
    if not spec:
        return
    for item in spec.split(","):
        item, _, action = item.strip().partition("=")
        point, _, nth = item.partition("@")
        if point != name:
            continue
        _hits[name] = _hits.get(name, 0) + 1
        if nth and int(nth) != _hits[name]:
            continue
        if action == "pause":
            _pause(name)
        else:
            import signal

            os.kill(os.getpid(), signal.SIGKILL)


def _pause(name: str) -> None:
    marker = Path(os.environ.get("LIFTGATE_FAILPOINT_DIR", ".")) / f"{name}.paused"
    marker.touch()
    deadline = time.monotonic() + 120
    while marker.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
