"""Durability: how liftgate makes what it wrote survive a power loss.

Every flush names what was written: ``files`` (their bytes), ``folders`` (their entries:
a file or folder made, renamed or linked in them) and ``trees`` (folders whose every file
and subfolder is new, such as an evidence bundle). ``[durability] flush`` in liftgate.toml
says how they are flushed:

* ``"files"`` (the default): an fsync of each named file, tree member and folder, and
  nothing else; the SQLite ops store syncs its own log at every commit
  (``synchronous=FULL``). A promotion asks the kernel to write back only its own files
  (the file system's journal may still commit other programs' metadata with them).
* ``"filesystem"``: one ``syncfs(2)`` per file system that holds one of them, the ops
  store's folder included (the SQLite store then leaves its own flushing to it). One
  journal commit for everything: cheaper on a disk liftgate has to itself. But syncfs also
  writes back, and waits for, whatever other programs left dirty on that file system: on a
  host where a busy database shares the disk, every flush point waits for the database's
  write-back (``benchmarks/bench_files.py`` section [4] times both modes with another
  process writing).

Both modes make the same things durable at the same points; only the system calls differ.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from liftgate.config import FLUSH_MODES
from liftgate.engine.fsops import fsync_many, sync_filesystems, tree_members

__all__ = ["Durability"]


class Durability:
    """The flush mode of a project, and the one place liftgate's flushes go through."""

    def __init__(self, mode: str = FLUSH_MODES[0], store_dir: Path | None = None) -> None:
        if mode not in FLUSH_MODES:
            raise ValueError(f"unknown flush mode {mode!r} (known: {', '.join(FLUSH_MODES)})")
        self.mode = mode
        self.store_dir = store_dir  # the SQLite ops store's folder; None with PostgreSQL

    @property
    def per_file(self) -> bool:
        """True when each write is flushed by its own fsync (``flush = "files"``)."""
        return self.mode == "files"

    def flush(
        self,
        *,
        files: Iterable[Path | str] = (),
        folders: Iterable[Path | str] = (),
        trees: Iterable[Path | str] = (),
    ) -> None:
        """Make ``files``, the entries of ``folders`` and everything below ``trees`` durable.

        Every path must exist. In ``filesystem`` mode the ops store's file system is flushed
        too (its commits since the last flush become durable with the rest).
        """
        if not self.per_file:
            paths: list[Path | str] = [*files, *folders, *trees]
            if self.store_dir is not None:
                paths.append(self.store_dir)
            sync_filesystems(paths)
            return
        names: list[Path | str] = list(files)
        tree_folders: list[str] = []
        for tree in trees:
            members, below = tree_members(Path(tree))
            names.extend(members)
            tree_folders.extend(below)
        fsync_many(names, [*tree_folders, *folders])
