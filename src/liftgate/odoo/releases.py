"""Capistrano-style releases: ``<releases>/releases/<sha>/`` and the ``current`` symlink.

``current`` is what the Odoo addons path points at. It is a relative symlink
(``releases/<sha>``) replaced atomically (a new link under a temp name, ``rename`` over the
old one, fsync of the folder), so Odoo sees either the old release or the new one, never a
mix. A release folder is complete when its marker ``.liftgate-release.json`` exists: it is
written last, after the exported tree was fsynced, and the folder is renamed into place
after that — a half-exported release never carries a release name.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from liftgate.engine.durability import Durability
from liftgate.engine.fsops import atomic_write_bytes, fsync_dir
from liftgate.errors import UsageError

__all__ = ["MARKER", "Releases"]

MARKER = ".liftgate-release.json"
_SHA = re.compile(r"^[0-9a-f]{40}$")


class Releases:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.dir = root / "releases"
        self.current_link = root / "current"

    def path(self, sha: str) -> Path:
        if not _SHA.match(sha):
            raise UsageError(f"{sha!r} is not a full commit SHA")
        return self.dir / sha

    def current(self) -> str | None:
        """The SHA ``current`` points at (None when there is no ``current`` yet)."""
        try:
            target = os.readlink(self.current_link)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise UsageError(f"{self.current_link} is not a symlink: {exc.strerror}") from None
        name = Path(target).name
        return name if _SHA.match(name) else None

    def complete(self, sha: str) -> bool:
        return (self.path(sha) / MARKER).is_file()

    def ensure(
        self,
        sha: str,
        export: Callable[[Path], None],
        meta: dict[str, object],
        durability: Durability,
    ) -> bool:
        """Make release ``sha`` exist; ``export(folder)`` writes its tree. True if made now.

        The exported tree is flushed as ``durability`` says (its files' write-back started
        together, then fsynced, by default; or one syncfs) before the marker is written."""
        final = self.path(sha)
        if self.complete(sha):
            return False
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.dir / f".tmp-{sha}-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            export(tmp)
            durability.flush(trees=[tmp])
            atomic_write_bytes(
                tmp / MARKER,
                (json.dumps({**meta, "commit": sha}, indent=2, sort_keys=True) + "\n").encode(),
                mode=0o644,
            )
            if final.exists():  # an incomplete leftover (no marker): replace it
                shutil.rmtree(final)
            os.rename(tmp, final)
            fsync_dir(self.dir)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return True

    def switch(self, sha: str) -> None:
        """Point ``current`` at release ``sha``, atomically."""
        if not self.complete(sha):
            raise UsageError(f"release {sha} is not complete; refusing to switch to it")
        tmp = self.root / f".current.tmp-{os.getpid()}"
        tmp.unlink(missing_ok=True)
        os.symlink(os.path.join("releases", sha), tmp)
        os.replace(tmp, self.current_link)
        fsync_dir(self.root)

    def unlink_current(self) -> None:
        """Remove ``current`` (the way back of a first deploy, which had none)."""
        try:
            self.current_link.unlink()
        except FileNotFoundError:
            return
        fsync_dir(self.root)

    def listed(self) -> list[tuple[float, str]]:
        """Complete releases as (time made, sha), newest first."""
        found = []
        if self.dir.is_dir():
            for entry in self.dir.iterdir():
                if _SHA.match(entry.name) and (entry / MARKER).is_file():
                    found.append(((entry / MARKER).stat().st_mtime, entry.name))
        return sorted(found, reverse=True)

    def touch(self, sha: str) -> None:
        """Mark release ``sha`` as just deployed (the order ``prune`` keeps by)."""
        now = time.time()
        os.utime(self.path(sha) / MARKER, (now, now))

    def prune(self, keep: int, protect: Iterable[str | None] = ()) -> list[str]:
        """Remove all but the ``keep`` newest releases; ``current`` and ``protect`` stay."""
        keep_set = {sha for sha in (*protect, self.current()) if sha}
        removed = []
        for index, (_, sha) in enumerate(self.listed()):
            if index < keep or sha in keep_set:
                continue
            shutil.rmtree(self.path(sha))
            removed.append(sha)
        # leftovers of exports killed half way
        if self.dir.is_dir():
            for entry in self.dir.iterdir():
                if entry.name.startswith(".tmp-") or (
                    _SHA.match(entry.name) and not (entry / MARKER).exists()
                ):
                    shutil.rmtree(entry, ignore_errors=True)
        return removed
