"""The content-addressed store of Odoo filestore files shared by every artifact.

A blob is one attachment's bytes, named by their sha1 exactly like Odoo names the files of
its filestore: ``<root>/<sha1[:2]>/<sha1>``. An attachment that several backups reference
is stored once, so a second backup of an unchanged filestore copies nothing.

Every blob is written like every other durable file (temp file in the blob's own folder,
hashed while it is copied, fsync, ``os.replace``, fsync of the folder) and is read-only for
its owner alone: blobs are ``0400``, folders ``0700``. Two processes storing the same blob
at once are safe: the bytes are checked against the name before the rename, so whichever
rename wins, the blob holds exactly those bytes.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

from liftgate.engine.filehash import hash_file
from liftgate.engine.fsops import CHUNK, fsync_dir
from liftgate.errors import IntegrityError

__all__ = ["BLOB_MODE", "DIR_MODE", "BlobStore", "check_sha1", "make_private_dirs"]

BLOB_MODE = 0o400
DIR_MODE = 0o700

_SHA1 = re.compile(r"[0-9a-f]{40}")
_PREFIX = re.compile(r"[0-9a-f]{2}")
_LINK_ERRORS = (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EACCES)


def check_sha1(sha1: str) -> str:
    """Return ``sha1`` if it is 40 lowercase hex digits; otherwise raise IntegrityError."""
    if not isinstance(sha1, str) or not _SHA1.fullmatch(sha1):
        raise IntegrityError(f"{sha1!r} is not a blob name (40 lowercase hex digits)")
    return sha1


def make_private_dirs(path: Path) -> None:
    """Create ``path`` and its missing parents with mode 0700 (the umask cannot widen it).

    Safe when another process creates the same folders at the same time.
    """
    missing: list[Path] = []
    current = path
    while not current.is_dir():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for folder in reversed(missing):
        try:
            os.mkdir(folder, DIR_MODE)
        except FileExistsError:
            continue
        os.chmod(folder, DIR_MODE)
        fsync_dir(folder.parent)


def _copy_hashing(src_fd: int, dst_fd: int) -> tuple[str, int]:
    """Copy everything from ``src_fd`` to ``dst_fd``; return the sha1 and size of the bytes."""
    digest = hashlib.sha1(usedforsecurity=False)
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    total = 0
    while True:
        n = os.readv(src_fd, [buf])
        if not n:
            break
        chunk = view[:n]
        digest.update(chunk)
        while chunk:
            chunk = chunk[os.write(dst_fd, chunk) :]
        total += n
    return digest.hexdigest(), total


class BlobStore:
    """Blobs named by their sha1 under ``root`` (created on the first ``put``)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, sha1: str) -> Path:
        check_sha1(sha1)
        return self.root / sha1[:2] / sha1

    def has(self, sha1: str) -> bool:
        return self.path(sha1).is_file()

    def size(self, sha1: str) -> int:
        """The blob's size in bytes; IntegrityError if it is not in the store."""
        try:
            return os.stat(self.path(sha1)).st_size
        except FileNotFoundError:
            raise IntegrityError(f"the blob {sha1} is missing from {self.root}") from None

    def put(self, src: Path, sha1: str) -> bool:
        """Store the bytes of ``src`` as blob ``sha1``.

        Returns True when the blob was stored now, False when it was already there (then
        nothing is read or copied). Raises IntegrityError if the bytes' sha1 is not ``sha1``.
        """
        final = self.path(sha1)
        if final.is_file():
            return False
        folder = final.parent
        make_private_dirs(folder)
        fd, name = tempfile.mkstemp(prefix=f".{sha1}.", suffix=".tmp", dir=folder)
        tmp = Path(name)
        try:
            try:
                with open(src, "rb", buffering=0) as inp:
                    actual, _ = _copy_hashing(inp.fileno(), fd)
                if actual != sha1:
                    raise IntegrityError(
                        f"{src} cannot be stored as blob {sha1}: its bytes hash to {actual}"
                    )
                os.fchmod(fd, BLOB_MODE)
                os.fsync(fd)
            finally:
                os.close(fd)
            if final.is_file():
                # another process stored it meanwhile: same name, so the same bytes
                tmp.unlink()
                return False
            os.replace(tmp, final)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            raise
        fsync_dir(folder)
        return True

    def verify(self, sha1: str) -> bool:
        """True if the blob exists and its bytes still hash to its name."""
        try:
            return hash_file(self.path(sha1), hashlib.sha1(usedforsecurity=False)) == sha1
        except FileNotFoundError:
            return False

    def link_or_copy(self, sha1: str, dst: Path) -> str:
        """Put the blob's bytes at ``dst`` (which must not exist); return ``"link"`` or ``"copy"``.

        A hard link where the file system allows it (O(1); ``dst`` then shares the blob's
        read-only inode); otherwise a copy, checked against the blob's name while it is
        written and fsynced. Fsyncing ``dst``'s folder is left to the caller, once for all.
        """
        src = self.path(sha1)
        try:
            os.link(src, dst, follow_symlinks=False)
            return "link"
        except FileNotFoundError:
            if not src.is_file():
                raise IntegrityError(f"the blob {sha1} is missing from {self.root}") from None
            raise
        except OSError as exc:
            if exc.errno not in _LINK_ERRORS:
                raise
        out = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with open(src, "rb", buffering=0) as inp:
                actual, _ = _copy_hashing(inp.fileno(), out)
            if actual != sha1:
                raise IntegrityError(f"the blob {sha1} is damaged: its bytes hash to {actual}")
            os.fchmod(out, BLOB_MODE)
            os.fsync(out)
        except BaseException:
            os.close(out)
            with contextlib.suppress(FileNotFoundError):
                dst.unlink()
            raise
        os.close(out)
        return "copy"

    def iter_all(self) -> Iterator[str]:
        """Every stored blob's sha1, sorted (unfinished temp files are skipped)."""
        if not self.root.is_dir():
            return
        for prefix in sorted(os.listdir(self.root)):
            folder = self.root / prefix
            if not _PREFIX.fullmatch(prefix) or not folder.is_dir():
                continue
            for name in sorted(os.listdir(folder)):
                if _SHA1.fullmatch(name) and name.startswith(prefix):
                    yield name

    def remove(self, sha1: str) -> None:
        """Remove the blob; nothing if it is not there."""
        with contextlib.suppress(FileNotFoundError):
            self.path(sha1).unlink()
