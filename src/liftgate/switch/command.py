"""The command switch: your own commands drive the switch.

``activate`` is an argv in which ``{slot}`` (a whole argument or part of one) is replaced
by ``blue`` or ``green`` — plain text replacement, never a shell; ``status`` is an argv that
prints the active slot (its stdout, stripped, must be ``blue`` or ``green``). Both run in
``base_dir`` with a timeout; a program given as a relative path is taken from ``base_dir``.
After ``activate`` runs, ``status`` must report the new slot.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from liftgate.envconfig import CommandSwitchSettings
from liftgate.errors import ConfigError, SwitchError

from .base import (
    COMMAND_TIMEOUT,
    SLOTS,
    CommandResult,
    Cutover,
    Slot,
    executable_problem,
    first_line,
    ms_since,
    redact_argv,
    resolve_argv,
    run_argv,
)

__all__ = ["PLACEHOLDER", "CommandSwitch"]

PLACEHOLDER = "{slot}"


class CommandSwitch:
    kind: str = "command"

    def __init__(
        self, settings: CommandSwitchSettings, base_dir: Path, *, timeout: float = COMMAND_TIMEOUT
    ) -> None:
        self.base_dir = base_dir
        self.activate_argv = resolve_argv(base_dir, settings.activate, "activate")
        self.status_argv = resolve_argv(base_dir, settings.status, "status")
        if not any(PLACEHOLDER in arg for arg in self.activate_argv):
            raise ConfigError(
                f"the switch's activate command needs a {PLACEHOLDER} argument (the slot to "
                "make active)"
            )
        self.timeout = timeout

    def describe(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "activate": redact_argv(self.activate_argv),
            "status": redact_argv(self.status_argv),
        }

    def argv_for(self, slot: Slot) -> list[str]:
        """The activate argv for ``slot`` (``{slot}`` replaced in every argument)."""
        return [arg.replace(PLACEHOLDER, slot) for arg in self.activate_argv]

    def active(self) -> Slot:
        return self._parse(self._status())

    def check(self) -> None:
        self._status()
        problem = executable_problem(self.activate_argv[0])
        if problem is not None:
            raise SwitchError(f"the switch's activate command cannot run: {problem}")

    def activate(self, slot: Slot) -> Cutover:
        started = time.perf_counter()
        if slot not in SLOTS:
            raise SwitchError(f"{slot!r} is not a slot (blue or green)")
        printed = self._status()
        previous = next((s for s in SLOTS if s == printed), None)
        if previous == slot:
            return Cutover(slot, previous, ms_since(started), False, {"status": printed})
        argv = self.argv_for(slot)
        result = run_argv(
            argv, cwd=self.base_dir, what="the switch's activate command", timeout=self.timeout
        )
        if not result.ok:
            raise SwitchError(
                f"the switch's activate command {_prog(argv)} failed"
                f"{_reason(result)}; run status to see where traffic goes now"
            )
        after = self._parse(self._status())
        if after != slot:
            raise SwitchError(
                f"the switch's activate command {_prog(argv)} succeeded but status still reports "
                f"{after}, not {slot}"
            )
        return Cutover(
            slot, previous, ms_since(started), True, {"activate": result.summary(), "status": after}
        )

    def _status(self) -> str:
        result = run_argv(
            self.status_argv,
            cwd=self.base_dir,
            what="the switch's status command",
            timeout=self.timeout,
        )
        if not result.ok:
            raise SwitchError(
                f"the switch's status command {_prog(self.status_argv)} failed{_reason(result)}"
            )
        return result.stdout.strip()

    def _parse(self, printed: str) -> Slot:
        for slot in SLOTS:
            if printed == slot:
                return slot
        line = first_line(printed)
        shown = line if len(line) <= 60 else line[:57] + "..."
        if printed.strip() and line != printed.strip():
            shown += " (and more lines)"
        raise SwitchError(
            f"the switch's status command {_prog(self.status_argv)} printed {shown!r}, "
            "not blue or green"
        )


def _prog(argv: list[str]) -> str:
    return os.path.basename(argv[0])


def _reason(result: CommandResult) -> str:
    line = first_line(result.stderr, result.stdout)
    return f" (exit {result.returncode}: {line})" if line else f" (exit {result.returncode})"
