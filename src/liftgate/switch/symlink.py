"""The symlink switch: ``link`` points at the active slot's target.

A cutover makes a new symlink at a temporary name beside ``link`` and renames it over
``link`` (one atomic ``rename(2)``: a reader resolves the old or the new target, never
nothing), then fsyncs the folder. The link holds the target's absolute path.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
import time
from pathlib import Path
from typing import Any

from liftgate.engine.fsops import fsync_dir
from liftgate.envconfig import SymlinkSwitchSettings
from liftgate.errors import ConfigError, SwitchError

from .base import SLOTS, Cutover, Slot, ms_since, resolve_path

__all__ = ["SymlinkSwitch"]


class SymlinkSwitch:
    kind: str = "symlink"

    def __init__(self, settings: SymlinkSwitchSettings, base_dir: Path) -> None:
        self.link = resolve_path(base_dir, settings.link)
        if set(settings.targets) != set(SLOTS):
            raise ConfigError("the symlink switch's targets need both blue and green")
        self.targets: dict[Slot, Path] = {
            slot: resolve_path(base_dir, settings.targets[slot]) for slot in SLOTS
        }
        if self.targets["blue"] == self.targets["green"]:
            raise ConfigError("the symlink switch's targets for blue and green are the same")

    def describe(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "link": str(self.link),
            "targets": {slot: str(path) for slot, path in self.targets.items()},
        }

    def active(self) -> Slot:
        dest = self._readlink()
        if dest is None:
            raise SwitchError(f"the switch link {self.link} does not exist")
        return self._slot_of(dest)

    def check(self) -> None:
        folder = self.link.parent
        if not folder.is_dir():
            raise SwitchError(f"the switch link's folder {folder} does not exist")
        if not os.access(folder, os.W_OK | os.X_OK):
            raise SwitchError(
                f"the switch link {self.link} cannot be replaced: no write access to {folder}"
            )
        self._readlink()
        for slot in SLOTS:
            if not self.targets[slot].exists():
                raise SwitchError(f"the {slot} target {self.targets[slot]} does not exist")

    def activate(self, slot: Slot) -> Cutover:
        started = time.perf_counter()
        if slot not in SLOTS:
            raise SwitchError(f"{slot!r} is not a slot (blue or green)")
        target = self.targets[slot]
        if not target.exists():
            raise SwitchError(
                f"the {slot} target {target} does not exist, so {self.link} was left as it is"
            )
        dest = self._readlink()
        previous: Slot | None = None
        if dest is not None:
            with contextlib.suppress(SwitchError):
                previous = self._slot_of(dest)
        detail: dict[str, Any] = {"link": str(self.link), "target": str(target)}
        if previous == slot:
            return Cutover(slot, previous, ms_since(started), False, detail)
        folder = self.link.parent
        tmp = folder / f".{self.link.name}.liftgate-{os.getpid()}-{secrets.token_hex(4)}"
        try:
            os.symlink(target, tmp)
            os.replace(tmp, self.link)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise SwitchError(
                f"the switch link {self.link} cannot be replaced: {exc.strerror or exc}"
            ) from exc
        try:
            fsync_dir(folder)
        except OSError as exc:
            raise SwitchError(
                f"{self.link} now points at the {slot} target but its folder could not be "
                f"synced ({exc.strerror or exc})"
            ) from exc
        if self._slot_of(self._readlink() or "") != slot:
            raise SwitchError(f"{self.link} does not read back as the {slot} target")
        return Cutover(slot, previous, ms_since(started), True, detail)

    def _readlink(self) -> str | None:
        """What the link holds; None if there is no link; SwitchError if it is no symlink."""
        try:
            st = os.lstat(self.link)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise SwitchError(f"{self.link} cannot be read: {exc.strerror or exc}") from exc
        if not stat.S_ISLNK(st.st_mode):
            raise SwitchError(f"{self.link} is not a symlink, so the switch will not replace it")
        try:
            return os.readlink(self.link)
        except OSError as exc:
            raise SwitchError(f"{self.link} cannot be read: {exc.strerror or exc}") from exc

    def _slot_of(self, dest: str) -> Slot:
        full = os.path.normpath(os.path.join(self.link.parent, dest))
        real = os.path.realpath(full)
        for slot in SLOTS:
            target = self.targets[slot]
            if full == str(target) or real == os.path.realpath(target):
                return slot
        raise SwitchError(
            f"{self.link} points at {dest}, which is neither the blue target "
            f"{self.targets['blue']} nor the green target {self.targets['green']}"
        )
