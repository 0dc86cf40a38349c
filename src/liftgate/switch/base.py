"""What every traffic switch shares: slots, the cutover record, the interface, helpers.

A switch never uses a shell: commands are argv lists, run with a timeout, in their own
process group (killed whole when the timeout passes), with no stdin.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

from liftgate.engine.redaction import Redactor
from liftgate.errors import ConfigError, SwitchError

__all__ = [
    "COMMAND_TIMEOUT",
    "SLOTS",
    "CommandResult",
    "Cutover",
    "Slot",
    "TrafficSwitch",
    "check_writable_file",
    "executable_problem",
    "first_line",
    "ms_since",
    "other",
    "redact_argv",
    "resolve_argv",
    "resolve_path",
    "run_argv",
    "slot_map",
]

Slot = Literal["blue", "green"]
SLOTS: tuple[Slot, Slot] = ("blue", "green")

# a test, reload, status or activate command that takes longer than this is killed
COMMAND_TIMEOUT = 60.0

_REDACTOR = Redactor()


def other(slot: Slot) -> Slot:
    return "green" if slot == "blue" else "blue"


@dataclass(frozen=True)
class Cutover:
    """What one ``activate()`` did.

    ``previous`` is the slot that was active before, or None when the switch could not tell
    (its state was ambiguous or half-done, and ``activate`` repaired it). ``changed`` is
    False when ``slot`` was already the only active one and nothing was done.
    """

    slot: Slot
    previous: Slot | None
    elapsed_ms: float
    changed: bool
    detail: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@runtime_checkable
class TrafficSwitch(Protocol):
    """The one place that knows, and sets, which slot receives new requests."""

    kind: str

    def describe(self) -> dict[str, Any]:
        """The switch's settings, JSON-ready, secrets redacted."""
        ...

    def active(self) -> Slot:
        """The slot that receives new requests, read from the switch itself.

        Raises SwitchError when the switch cannot be read or is ambiguous (both slots or
        neither).
        """
        ...

    def check(self) -> None:
        """Raise SwitchError (one sentence) unless the switch answers and may be driven."""
        ...

    def activate(self, slot: Slot) -> Cutover:
        """Make ``slot`` the only slot receiving new requests (idempotent), verified."""
        ...


@dataclass(frozen=True)
class CommandResult:
    argv: list[str]
    returncode: int
    stdout: str
    stderr: str
    elapsed_ms: float

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def summary(self) -> dict[str, Any]:
        return {"argv": redact_argv(self.argv), "exit": self.returncode, "ms": self.elapsed_ms}


def ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)


def resolve_path(base_dir: Path, value: str) -> Path:
    """``value`` made absolute against ``base_dir`` and normalized; symlinks are NOT followed
    (a switch's symlink must stay the link, not become its target)."""
    if not value:
        raise ConfigError("a switch path is empty")
    path = Path(value)
    return Path(os.path.normpath(path if path.is_absolute() else base_dir / path))


def resolve_argv(base_dir: Path, argv: Sequence[str], what: str) -> list[str]:
    """``argv`` with a relative program path (``./bin/x``, ``scripts/x``) made absolute."""
    if not argv or not argv[0]:
        raise ConfigError(f"the switch's {what} command is empty")
    prog = argv[0]
    if "/" in prog and not os.path.isabs(prog):
        prog = str(resolve_path(base_dir, prog))
    return [prog, *argv[1:]]


def redact_argv(argv: Sequence[str]) -> list[str]:
    return [_REDACTOR.text(a) for a in argv]


def first_line(*texts: str) -> str:
    """The first non-blank line of the first text that has one (stderr before stdout)."""
    for text in texts:
        for line in text.splitlines():
            if line.strip():
                return _REDACTOR.text(line.strip())[:300]
    return ""


def executable_problem(prog: str) -> str | None:
    """Why ``prog`` (a path or a name looked up in PATH) cannot be run, or None."""
    if "/" in prog:
        if not os.path.exists(prog):
            return f"{prog} does not exist"
        if not os.access(prog, os.X_OK) or os.path.isdir(prog):
            return f"{prog} is not executable"
        return None
    if shutil.which(prog) is None:
        return f"{prog} is not found in PATH"
    return None


def run_argv(argv: Sequence[str], *, cwd: Path, what: str, timeout: float) -> CommandResult:
    """Run ``argv`` (no shell) and capture its output; SwitchError if it cannot run or hangs.

    A non-zero exit is returned, not raised: the caller words the failure.
    """
    started = time.perf_counter()
    try:
        proc = subprocess.Popen(
            list(argv),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
    except FileNotFoundError as exc:
        missing = exc.filename if exc.filename not in (None, argv[0]) else argv[0]
        raise SwitchError(f"{what} cannot run: {missing} was not found") from exc
    except PermissionError as exc:
        raise SwitchError(f"{what} cannot run: {argv[0]} is not executable") from exc
    except OSError as exc:
        raise SwitchError(f"{what} cannot run: {exc.strerror or exc}") from exc
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise SwitchError(f"{what} did not finish within {timeout:g} s and was killed") from exc
    return CommandResult(
        argv=list(argv),
        returncode=proc.returncode,
        stdout=out.decode("utf-8", "replace"),
        stderr=err.decode("utf-8", "replace"),
        elapsed_ms=ms_since(started),
    )


_NAME = re.compile(r"^[A-Za-z0-9_.:\-]+$")


def slot_map(
    values: dict[Slot, str], what: str, *, pattern: re.Pattern[str] | None = None
) -> dict[Slot, str]:
    """``values`` checked: both slots, two different values, each matching ``pattern``."""
    if set(values) != set(SLOTS):
        raise ConfigError(f"the switch's {what} needs both blue and green")
    check = pattern or _NAME
    for slot in SLOTS:
        if not check.fullmatch(values[slot]):
            raise ConfigError(f"the switch's {what} for {slot} ({values[slot]!r}) is not valid")
    if values["blue"] == values["green"]:
        raise ConfigError(f"the switch's {what} for blue and green are the same")
    return {slot: values[slot] for slot in SLOTS}


def check_writable_file(path: Path, what: str) -> None:
    """SwitchError unless ``path`` (through symlinks) can be replaced by a rename in its folder."""
    real = Path(os.path.realpath(path))
    folder = real.parent
    if not folder.is_dir():
        raise SwitchError(f"{what} {path} cannot be written: {folder} is not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise SwitchError(f"{what} {path} cannot be written: no write access to {folder}")
    if real.exists() and not real.is_file():
        raise SwitchError(f"{what} {path} is not a regular file")
