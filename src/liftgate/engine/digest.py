"""Content digests and stat fingerprints of files and folders.

* ``content_digest`` reads every byte: sha256 of a file, or for a folder the sha256 of a
  sorted listing ``<kind> <x> <sha256|link target> <relative path>`` of everything below it.
* ``sha256_file`` and ``file_identity`` come from ``liftgate.engine.filehash`` (kept light
  for the prefetch) and are re-exported here.
* ``fingerprint`` reads only metadata: device, inode, size, mtime and ctime of the file (or
  of every entry of a folder). ctime cannot be set by user tools, so an unchanged
  fingerprint means unchanged content — the same rule git's index relies on. liftgate
  records the fingerprint of every target it writes and re-hashes only when it differs.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path
from typing import Literal, NamedTuple

from liftgate.engine.filehash import file_identity, sha256_file
from liftgate.errors import PathError

__all__ = [
    "PathState",
    "content_digest",
    "file_identity",
    "fingerprint",
    "path_kind",
    "sha256_file",
    "special_kind",
    "tree_entries",
]

Kind = Literal["file", "dir", "absent"]


def path_kind(path: Path) -> Kind:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return "absent"
    if stat.S_ISDIR(st.st_mode):
        return "dir"
    return "file"


def tree_entries(root: Path) -> list[tuple[str, os.stat_result, Path]]:
    """Every entry below folder ``root``, symlinks not followed, sorted by relative path:
    (relative path with forward slashes, its lstat, its path)."""
    out: list[tuple[str, os.stat_result, Path]] = []
    stack = [root]
    while stack:
        current = stack.pop()
        with os.scandir(current) as it:
            for entry in it:
                path = Path(entry.path)
                st = entry.stat(follow_symlinks=False)
                out.append((path.relative_to(root).as_posix(), st, path))
                if stat.S_ISDIR(st.st_mode):
                    stack.append(path)
    out.sort(key=lambda item: item[0])
    return out


def special_kind(mode: int) -> str | None:
    """What a path of this ``st_mode`` is when it is none of a regular file, a folder or a
    symlink ("fifo", "socket", "character device", "block device"); None otherwise."""
    for test, name in (
        (stat.S_ISFIFO, "fifo"),
        (stat.S_ISSOCK, "socket"),
        (stat.S_ISCHR, "character device"),
        (stat.S_ISBLK, "block device"),
    ):
        if test(mode):
            return name
    return None


def _refuse_special(path: Path, mode: int) -> None:
    """Opening a fifo or a device to hash it could block forever or never end: refuse."""
    special = special_kind(mode)
    if special is not None:
        raise PathError(
            f"{path} is a {special}, not a regular file, folder or symlink; liftgate does not "
            "read or replace it"
        )


def content_digest(path: Path) -> str | None:
    """sha256 of a file's bytes or of a folder's listing; None when ``path`` is absent.

    PathError when ``path``, or an entry of the folder, is a fifo, socket or device."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    if not stat.S_ISDIR(st.st_mode):
        _refuse_special(path, st.st_mode)
        return sha256_file(path)
    listing = hashlib.sha256()
    for rel, st, full in tree_entries(path):
        if stat.S_ISDIR(st.st_mode):
            line = f"d - - {rel}\n"
        elif stat.S_ISLNK(st.st_mode):
            line = f"l - {os.readlink(full)} {rel}\n"
        else:
            _refuse_special(full, st.st_mode)
            x = "x" if st.st_mode & 0o111 else "-"
            line = f"f {x} {sha256_file(full)} {rel}\n"
        listing.update(line.encode("utf-8", "surrogateescape"))
    return "tree-" + listing.hexdigest()


def fingerprint(path: Path) -> str | None:
    """A digest of the stat metadata of a file or of every entry of a folder."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    fp = hashlib.sha256()

    def add(rel: str, s: os.stat_result) -> None:
        fp.update(
            f"{rel}\0{s.st_dev}\0{s.st_ino}\0{s.st_mode}\0{s.st_size}\0"
            f"{s.st_mtime_ns}\0{s.st_ctime_ns}\n".encode("utf-8", "surrogateescape")
        )

    add(".", st)
    if stat.S_ISDIR(st.st_mode):
        for rel, s, _ in tree_entries(path):
            add(rel, s)
    return fp.hexdigest()


class PathState(NamedTuple):
    """What a path holds: its kind, content digest and fingerprint."""

    kind: Kind
    digest: str | None
    fingerprint: str | None

    @classmethod
    def read(cls, path: Path, *, known: tuple[str, str] | None = None) -> PathState:
        """Read ``path``'s state. ``known`` is a (fingerprint, digest) pair recorded earlier:
        when the fingerprint still matches, the digest is taken from it without reading."""
        kind = path_kind(path)
        if kind == "absent":
            return cls("absent", None, None)
        fp = fingerprint(path)
        if known is not None and fp is not None and known[0] == fp:
            return cls(kind, known[1], fp)
        return cls(kind, content_digest(path), fp)
