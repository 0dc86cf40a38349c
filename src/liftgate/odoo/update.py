"""The module update, run through the Odoo server's own CLI from an argv template.

Default template::

    {odoo_bin} -c {odoo_conf} --addons-path {addons_path} -d {db} -u {update} -i {install}
    --stop-after-init --no-http

Placeholders are replaced inside each argument (never through a shell). ``{update}`` and
``{install}`` are comma-joined module lists; an argument that is exactly one of them and
whose list is empty is left out together with the flag before it (``-u``), and an argument
holding one inside other text (``--update={update}``) is left out whole. The template must
pass ``{addons_path}``: the update has to run the new release's code while ``current``
still points at the old one (it is switched only after the update succeeded).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from liftgate.errors import ConfigError

__all__ = ["DEFAULT_TEMPLATE", "UpdateOutcome", "build_argv", "run_update"]

DEFAULT_TEMPLATE = [
    "{odoo_bin}",
    "-c",
    "{odoo_conf}",
    "--addons-path",
    "{addons_path}",
    "-d",
    "{db}",
    "-u",
    "{update}",
    "-i",
    "{install}",
    "--stop-after-init",
    "--no-http",
]
_LISTS = ("{update}", "{install}")
_KNOWN = ("{odoo_bin}", "{odoo_conf}", "{addons_path}", "{db}", *_LISTS)


def build_argv(template: Sequence[str], values: dict[str, str | list[str]]) -> list[str]:
    """The update's argv: placeholders filled, flags of empty lists left out."""
    joined = " ".join(template)
    if "{addons_path}" not in joined:
        raise ConfigError(
            "update_command must pass {addons_path}, so that the update runs the new "
            "release's code before current is switched to it"
        )
    argv: list[str] = []
    for arg in template:
        if arg in _LISTS:
            items = values[arg.strip("{}")]
            if not items:
                if argv and argv[-1].startswith("-"):
                    argv.pop()
                continue
        elif any(p in arg for p in _LISTS) and any(
            not values[p.strip("{}")] for p in _LISTS if p in arg
        ):
            continue
        out = arg
        for placeholder in _KNOWN:
            if placeholder in out:
                value = values[placeholder.strip("{}")]
                out = out.replace(
                    placeholder, ",".join(value) if isinstance(value, list) else value
                )
        argv.append(out)
    return argv


@dataclass(frozen=True)
class UpdateOutcome:
    argv: list[str]
    returncode: int
    seconds: float
    timed_out: bool

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out

    def as_dict(self) -> dict[str, Any]:
        return {
            "argv": self.argv,
            "returncode": self.returncode,
            "seconds": round(self.seconds, 3),
            "timed_out": self.timed_out,
        }


def run_update(argv: list[str], log: Path, *, timeout: float) -> UpdateOutcome:
    """Run the update with its output in ``log``; on timeout its process group is killed."""
    started = time.monotonic()
    with open(log, "wb") as out:
        try:
            proc = subprocess.Popen(
                argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        except OSError as exc:
            raise ConfigError(
                f"cannot run the update command {argv[0]!r}: {exc.strerror}"
            ) from None
        timed_out = False
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            os.killpg(proc.pid, signal.SIGKILL)
            code = proc.wait()
        except BaseException:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise
    return UpdateOutcome(argv, code, time.monotonic() - started, timed_out)
