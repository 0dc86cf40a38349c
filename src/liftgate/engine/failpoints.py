"""Failpoints: named places where a test can make liftgate kill itself.

``LIFTGATE_FAILPOINTS`` holds a comma-separated list of names; when the process reaches one
of them it sends itself SIGKILL, exactly like a crash or an OOM kill. ``name@N`` fires on the
N-th time the point is reached. Unset (the default), every failpoint is a no-op.
"""

from __future__ import annotations

import os
import signal

__all__ = ["ENV_VAR", "failpoint"]

ENV_VAR = "LIFTGATE_FAILPOINTS"

_hits: dict[str, int] = {}


def failpoint(name: str) -> None:
    spec = os.environ.get(ENV_VAR)
    if not spec:
        return
    for item in spec.split(","):
        point, _, nth = item.strip().partition("@")
        if point != name:
            continue
        _hits[name] = _hits.get(name, 0) + 1
        if not nth or int(nth) == _hits[name]:
            os.kill(os.getpid(), signal.SIGKILL)
