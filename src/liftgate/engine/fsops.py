"""Durable, atomic file-system operations.

Every write that must survive follows one order:

1. Write the content to a temp file in the destination's directory.
2. fsync the temp file.
3. Rename it over the destination (``os.replace``, or ``renameat2`` for directories).
4. fsync the directory, so the rename itself is durable.
5. On any error before step 3, remove the temp file.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import hashlib
import os
import shutil
import stat
from collections.abc import Callable
from pathlib import Path

from liftgate.errors import OperationError

__all__ = [
    "CHUNK",
    "atomic_write_bytes",
    "copy_file_durable",
    "copy_tree_durable",
    "exchange",
    "fsync_dir",
    "fsync_tree",
    "link_or_copy_file",
    "link_or_copy_tree",
    "remove_path",
    "rename_noreplace",
]

CHUNK = 1 << 20

_RENAME_NOREPLACE = 1
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def fsync_dir(path: Path) -> None:
    """Make the entries of directory ``path`` (renames, links, unlinks) durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path, data: bytes, *, mode: int = 0o600, durable: bool = True) -> None:
    """Replace ``path`` with ``data`` so that readers see the old or the new file, never a mix."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        try:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    if durable:
        fsync_dir(path.parent)


def copy_file_durable(
    src: Path,
    dst: Path,
    *,
    mode: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> str:
    """Copy ``src`` to a new file ``dst`` (which must not exist), fsync it, return its sha256.

    The hash is of the bytes written, computed in the same pass as the copy.
    """
    digest = hashlib.sha256()
    perm = stat.S_IMODE(os.stat(src).st_mode) if mode is None else mode
    out = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with open(src, "rb", buffering=0) as inp:
            buf = bytearray(CHUNK)
            view = memoryview(buf)
            while True:
                n = inp.readinto(buf)
                if not n:
                    break
                chunk = view[:n]
                digest.update(chunk)
                while chunk:
                    written = os.write(out, chunk)
                    chunk = chunk[written:]
                if progress is not None:
                    progress(n)
        os.fchmod(out, perm)
        os.fsync(out)
    except BaseException:
        os.close(out)
        with contextlib.suppress(FileNotFoundError):
            dst.unlink()
        raise
    os.close(out)
    return digest.hexdigest()


def _walk_sorted(root: Path) -> list[tuple[Path, os.stat_result]]:
    """Every entry below ``root`` (not ``root`` itself), parents before children, sorted."""
    out: list[tuple[Path, os.stat_result]] = []
    stack = [root]
    while stack:
        current = stack.pop()
        entries = sorted(os.scandir(current), key=lambda e: e.name, reverse=True)
        for entry in entries:
            path = Path(entry.path)
            st = entry.stat(follow_symlinks=False)
            out.append((path, st))
            if stat.S_ISDIR(st.st_mode):
                stack.append(path)
    out.sort(key=lambda item: item[0].relative_to(root).parts)
    return out


def copy_tree_durable(src: Path, dst: Path) -> None:
    """Copy directory ``src`` to a new directory ``dst``: files, folders and symlinks, with
    their permission bits; everything fsynced, folders included."""
    os.mkdir(dst, 0o700)
    dirs: list[tuple[Path, int]] = [(dst, stat.S_IMODE(os.stat(src).st_mode))]
    for path, st in _walk_sorted(src):
        target = dst / path.relative_to(src)
        if stat.S_ISDIR(st.st_mode):
            os.mkdir(target, 0o700)
            dirs.append((target, stat.S_IMODE(st.st_mode)))
        elif stat.S_ISREG(st.st_mode):
            copy_file_durable(path, target, mode=stat.S_IMODE(st.st_mode))
        elif stat.S_ISLNK(st.st_mode):
            os.symlink(os.readlink(path), target)
        else:
            raise OperationError(f"{path} is not a regular file, folder or symlink")
    for folder, perm in reversed(dirs):
        os.chmod(folder, perm)
        fsync_dir(folder)


def fsync_tree(root: Path) -> None:
    """fsync every regular file and folder below ``root`` (and ``root``)."""
    for path, st in _walk_sorted(root):
        if stat.S_ISREG(st.st_mode):
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        elif stat.S_ISDIR(st.st_mode):
            fsync_dir(path)
    fsync_dir(root)


def link_or_copy_file(src: Path, dst: Path) -> str:
    """Make ``dst`` a hard link of ``src`` (O(1)); copy when linking is impossible.

    Returns ``"link"`` or ``"copy"``.
    """
    try:
        os.link(src, dst, follow_symlinks=False)
        return "link"
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP):
            raise
    copy_file_durable(src, dst)
    return "copy"


def link_or_copy_tree(src: Path, dst: Path) -> str:
    """Rebuild directory ``src`` at ``dst`` with hard links to its files; copies if needed."""
    method = "link"
    os.mkdir(dst, 0o700)
    dirs: list[tuple[Path, int]] = [(dst, stat.S_IMODE(os.stat(src).st_mode))]
    for path, st in _walk_sorted(src):
        target = dst / path.relative_to(src)
        if stat.S_ISDIR(st.st_mode):
            os.mkdir(target, 0o700)
            dirs.append((target, stat.S_IMODE(st.st_mode)))
        elif stat.S_ISREG(st.st_mode):
            if link_or_copy_file(path, target) == "copy":
                method = "copy"
        elif stat.S_ISLNK(st.st_mode):
            os.symlink(os.readlink(path), target)
        else:
            raise OperationError(f"{path} is not a regular file, folder or symlink")
    for folder, perm in reversed(dirs):
        os.chmod(folder, perm)
        fsync_dir(folder)
    return method


def _libc_renameat2() -> Callable[..., int] | None:
    name = ctypes.util.find_library("c")
    if not name:
        return None
    libc = ctypes.CDLL(name, use_errno=True)
    fn = getattr(libc, "renameat2", None)
    if fn is None:
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn  # type: ignore[no-any-return]


_RENAMEAT2 = _libc_renameat2()


def _renameat2(src: Path, dst: Path, flags: int) -> None:
    if _RENAMEAT2 is None:
        raise OperationError(
            "this system has no renameat2(): atomic directory switches need Linux with glibc"
        )
    rc = _RENAMEAT2(_AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dst), flags)
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), str(src), None, str(dst))


def exchange(a: Path, b: Path) -> None:
    """Swap ``a`` and ``b`` in one atomic step (``renameat2(RENAME_EXCHANGE)``)."""
    _renameat2(a, b, _RENAME_EXCHANGE)


def rename_noreplace(src: Path, dst: Path) -> None:
    """Rename ``src`` to ``dst``, failing if ``dst`` exists (``RENAME_NOREPLACE``)."""
    _renameat2(src, dst, _RENAME_NOREPLACE)


def remove_path(path: Path) -> None:
    """Remove a file, symlink or whole folder; nothing if it does not exist."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(path)
    else:
        path.unlink()
