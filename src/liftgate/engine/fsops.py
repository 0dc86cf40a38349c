"""Durable, atomic file-system operations.

Every write that must survive follows one order:

1. Write the content to a temp file in the destination's directory.
2. fsync the temp file.
3. Rename it over the destination (``os.replace``, or ``renameat2`` for directories).
4. fsync the directory, so the rename itself is durable.
5. On any error before step 3, remove the temp file.

Where several writes must be durable together before one switch (a run's staged copy, its
backup link, its journal and its first evidence files), steps 2 and 4 are one
``fsync_many`` of them all (each file's write-back started before the first fsync waits)
or one ``sync_filesystems`` (``syncfs(2)`` once per file system): the same guarantee.
Which of the two a run uses is the project's ``[durability] flush`` setting
(``liftgate.engine.durability``).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import hashlib
import os
import stat
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import NamedTuple

from liftgate.engine import prefetch
from liftgate.engine.digest import file_identity
from liftgate.engine.filehash import CHUNK
from liftgate.engine.prefetch import LARGE
from liftgate.errors import OperationError

__all__ = [
    "CHUNK",
    "TreeCopy",
    "atomic_write_bytes",
    "copy_file_durable",
    "copy_file_verified",
    "copy_tree_durable",
    "exchange",
    "fsync_dir",
    "fsync_file",
    "fsync_many",
    "fsync_tree",
    "link_or_copy_file",
    "link_or_copy_tree",
    "remove_path",
    "rename_noreplace",
    "sync_filesystem",
    "sync_filesystems",
    "tree_members",
]


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


def fsync_file(path: Path | str) -> None:
    """fsync the file at ``path`` (opened read-only: Linux flushes the file, not the fd)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# the C library the interpreter is linked with (its symbols, without a library search)
_LIBC = ctypes.CDLL(None, use_errno=True)


def _libc_syncfs() -> Callable[[int], int] | None:
    fn = getattr(_LIBC, "syncfs", None)
    if fn is not None:
        fn.argtypes = [ctypes.c_int]
        fn.restype = ctypes.c_int
    return fn


_SYNCFS = _libc_syncfs()

# sync_file_range(2) with SYNC_FILE_RANGE_WRITE: start writing a range back, without waiting
_SYNC_FILE_RANGE_WRITE = 2
# a large copy is made in pieces of this size, each one's write-back started right after it
_WRITEBACK_CHUNK = 16 << 20


def _libc_sync_file_range() -> Callable[[int, int, int, int], int] | None:
    fn = getattr(_LIBC, "sync_file_range", None)
    if fn is not None:
        fn.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
        fn.restype = ctypes.c_int
    return fn


_SYNC_FILE_RANGE = _libc_sync_file_range()


def _start_writeback(fd: int, offset: int, length: int) -> None:
    """Ask the kernel to begin writing ``length`` bytes at ``offset`` back to the disk.

    Only a head start for the fsync that follows (which alone makes them durable): the
    disk writes while the rest is still being copied. Errors are left to that fsync.
    """
    if _SYNC_FILE_RANGE is not None:
        _SYNC_FILE_RANGE(fd, offset, length, _SYNC_FILE_RANGE_WRITE)


def sync_filesystem(path: Path) -> None:
    """Flush every file written to the file system that holds ``path`` (``syncfs(2)``).

    Where syncfs is missing, everything below ``path`` is fsynced instead (``fsync_tree``):
    what the callers wrote lies there.
    """
    fd = os.open(path, os.O_RDONLY)
    try:
        if _SYNCFS is not None and _SYNCFS(fd) == 0:
            return
    finally:
        os.close(fd)
    if os.path.isdir(path):
        fsync_tree(Path(path))
    else:
        fsync_file(path)


def sync_filesystems(paths: Iterable[Path | str]) -> None:
    """``sync_filesystem`` once for each file system that holds one of ``paths``.

    Each path is an existing folder (or file); paths on the same device share one syncfs.
    """
    seen: set[int] = set()
    for path in paths:
        dev = os.stat(path).st_dev
        if dev not in seen:
            seen.add(dev)
            sync_filesystem(Path(path))


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


# memcmp through ctypes runs without the GIL (bytearray == bytearray holds it); every C
# library has it, unlike syncfs or renameat2
_MEMCMP = _LIBC.memcmp
_MEMCMP.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t]
_MEMCMP.restype = ctypes.c_int
# a comparison of at least this many bytes is split in two halves, one per thread
_SPLIT_COMPARE = 32 << 20


def _same_range(a_fd: int, b_fd: int, start: int, end: int) -> bool:
    """Do bytes ``start``..``end`` of two open files agree (both having all of them)?

    Two buffers read into again and again: a fresh bytes object per chunk would cost a
    page fault per page of it."""
    a_buf, b_buf = bytearray(CHUNK), bytearray(CHUNK)
    a_view, b_view = memoryview(a_buf), memoryview(b_buf)
    a_ptr = ctypes.addressof((ctypes.c_char * CHUNK).from_buffer(a_buf))
    b_ptr = ctypes.addressof((ctypes.c_char * CHUNK).from_buffer(b_buf))
    offset = start
    while offset < end:
        want = min(CHUNK, end - offset)
        n = os.preadv(a_fd, [a_view[:want]], offset)
        if n == 0 or os.preadv(b_fd, [b_view[:n]], offset) != n:
            return False
        if _MEMCMP(a_ptr, b_ptr, n) != 0:
            return False
        offset += n
    return True


def _same_bytes(a_fd: int, b_fd: int, size: int) -> bool:
    """Do the first ``size`` bytes of two open files agree (and neither has more)?

    A large comparison runs in two threads, each over one half."""
    if size < _SPLIT_COMPARE:
        same = _same_range(a_fd, b_fd, 0, size)
    else:
        import threading  # only large copies get here

        half = size // 2 // CHUNK * CHUNK
        second: list[bool | BaseException] = []

        def compare_second_half() -> None:
            try:
                second.append(_same_range(a_fd, b_fd, half, size))
            except BaseException as exc:  # raised again below, in the caller's thread
                second.append(exc)

        helper = threading.Thread(target=compare_second_half, name="liftgate-compare")
        helper.start()
        try:
            same = _same_range(a_fd, b_fd, 0, half)
        finally:
            helper.join()
        if isinstance(second[0], BaseException):
            raise second[0]
        same = same and second[0]
    return same and not os.pread(a_fd, 1, size) and not os.pread(b_fd, 1, size)


def copy_file_verified(
    src: Path, dst: Path, *, mode: int | None = None, durable: bool = True
) -> str:
    """Copy ``src`` to a new file ``dst`` and prove ``dst`` holds ``src``'s bytes.

    Returns the sha256 of those bytes. Large files: the kernel copies
    (``copy_file_range``, 16 MiB at a time) while a second thread hashes the source
    (``prefetch``: the hash ``liftgate promote`` began when it started, if the file is
    unchanged since) and a third starts each piece's write-back to the disk as soon as it
    is copied, then fsyncs the file while the written file is compared byte for byte with
    the source (by two threads, one half each: ``_same_bytes``). The source's identity
    (device, inode, size, mtime, ctime) must be the same before and after, so the hash, the
    copy and the comparison all saw the same bytes; otherwise OperationError (the source
    changed while it was being copied) and ``dst`` is removed.

    ``durable=False`` leaves a small file unsynced: the caller makes it durable later (a
    ``Durability.flush``) before anything depends on it. A large file is fsynced anyway,
    overlapped with the comparison.
    """
    st_src = os.stat(src)
    perm = stat.S_IMODE(st_src.st_mode) if mode is None else mode
    if st_src.st_size <= LARGE:
        return _copy_small_verified(src, dst, perm, durable)
    hashing = prefetch.job(src, st_src)  # begun at the command's start, or now
    out = os.open(dst, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    flusher: _Flusher | None = None
    try:
        flusher = _Flusher(out)
        with open(src, "rb", buffering=0) as inp:
            size = os.fstat(inp.fileno()).st_size
            copied = 0
            while True:
                try:
                    n = os.copy_file_range(inp.fileno(), out, _WRITEBACK_CHUNK)
                except OSError as exc:
                    if exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
                        raise
                    n = _copy_user_space(inp.fileno(), out)
                if not n:
                    break
                flusher.written(copied, n)
                copied += n
            os.fchmod(out, perm)
            flusher.close()  # the fsync begins; the comparison runs meanwhile
            same = copied == size and _same_bytes(inp.fileno(), out, size)
            flusher.wait()
            source_digest = hashing.result()
            unchanged = file_identity(os.fstat(inp.fileno())) == file_identity(st_src)
    except BaseException:
        if flusher is not None:
            flusher.abandon()
        os.close(out)
        with contextlib.suppress(FileNotFoundError):
            dst.unlink()
        raise
    os.close(out)
    if not (same and unchanged):
        with contextlib.suppress(FileNotFoundError):
            dst.unlink()
        raise OperationError(f"{src} changed while it was being copied; nothing was changed")
    return source_digest


class _Flusher:
    """A thread that starts the write-back of each piece of a large copy as the copy makes
    it, then, once told the copy is complete, fsyncs the file.

    The copying thread never waits for the disk (``sync_file_range`` may block while the
    device's queue is full). An fsync error is raised by ``wait``.
    """

    def __init__(self, fd: int) -> None:
        import queue  # only large copies use threads
        import threading

        self._fd = fd
        self._ranges: queue.SimpleQueue[tuple[int, int] | None] = queue.SimpleQueue()
        self._abandoned = False
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="liftgate-flush")
        self._thread.start()

    def _run(self) -> None:
        try:
            while (piece := self._ranges.get()) is not None:
                _start_writeback(self._fd, *piece)
            if not self._abandoned:
                os.fsync(self._fd)
        except BaseException as exc:  # any failure: the file is not known to be durable
            self._error = exc

    def written(self, offset: int, length: int) -> None:
        self._ranges.put((offset, length))

    def close(self) -> None:
        """No more pieces: fsync the file."""
        self._ranges.put(None)

    def wait(self) -> None:
        """Wait for the fsync; raise what stopped it, if anything did."""
        self._thread.join()
        if self._error is not None:
            raise self._error

    def abandon(self) -> None:
        """Stop without the fsync (the copy is being thrown away) and wait for the thread."""
        self._abandoned = True
        self._ranges.put(None)
        self._thread.join()


def _copy_small_verified(src: Path, dst: Path, perm: int, durable: bool = True) -> str:
    """copy_file_verified for small files: in memory, no threads."""
    with open(src, "rb", buffering=0) as inp:
        data = inp.read()
    out = os.open(dst, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(out, view) :]
        os.fchmod(out, perm)
        if durable:
            os.fsync(out)
        same = os.pread(out, len(data) + 1, 0) == data
    except BaseException:
        os.close(out)
        with contextlib.suppress(FileNotFoundError):
            dst.unlink()
        raise
    os.close(out)
    if not same:
        with contextlib.suppress(FileNotFoundError):
            dst.unlink()
        raise OperationError(f"the copy of {src} does not read back as written")
    return hashlib.sha256(data).hexdigest()


def _copy_user_space(src_fd: int, dst_fd: int) -> int:
    total = 0
    while chunk := os.read(src_fd, CHUNK):
        view = memoryview(chunk)
        while view:
            view = view[os.write(dst_fd, view) :]
        total += len(chunk)
    return total


_TREE_THREADS = min(4, os.cpu_count() or 1)


def _rebuild_tree(src: Path, dst: Path, put_file: Callable[[str, str], int]) -> tuple[int, int]:
    """Recreate folder ``src`` at the new path ``dst``: folders (with their permission bits)
    and symlinks as they are, each regular file through ``put_file(source, destination)``,
    which returns the file's size. Returns (files, bytes).

    One walk makes every folder (entry types come from the directory listing: no stat per
    file); then a few threads put the files — link and copy release the GIL, and the kernel
    links into two folders at once — and finally chmod and fsync every folder."""
    os.mkdir(dst, 0o700)
    folders: list[tuple[str, int]] = [(str(dst), stat.S_IMODE(os.stat(src).st_mode))]
    files: list[tuple[str, str]] = []
    pending = [(str(src), str(dst))]
    while pending:
        source, target = pending.pop()
        with os.scandir(source) as listing:
            for entry in listing:
                made = os.path.join(target, entry.name)
                if entry.is_dir(follow_symlinks=False):
                    os.mkdir(made, 0o700)
                    perm = stat.S_IMODE(entry.stat(follow_symlinks=False).st_mode)
                    folders.append((made, perm))
                    pending.append((entry.path, made))
                elif entry.is_symlink():
                    os.symlink(os.readlink(entry.path), made)
                elif entry.is_file(follow_symlinks=False):
                    files.append((entry.path, made))
                else:
                    raise OperationError(f"{entry.path} is not a regular file, folder or symlink")

    def put(batch: list[tuple[str, str]]) -> int:
        return sum(put_file(source, target) for source, target in batch)

    def seal(folder: tuple[str, int]) -> None:
        os.chmod(folder[0], folder[1])
        fsync_dir(Path(folder[0]))

    if _TREE_THREADS > 1 and len(files) > 64:
        size = len(files) // (_TREE_THREADS * 8) + 1
        batches = [files[i : i + size] for i in range(0, len(files), size)]
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(_TREE_THREADS) as pool:
            total = sum(pool.map(put, batches))
            list(pool.map(seal, reversed(folders)))  # concurrent fsyncs share journal commits
    else:
        total = put(files)
        for folder in reversed(folders):
            seal(folder)
    return len(files), total


def copy_tree_durable(src: Path, dst: Path) -> None:
    """Copy directory ``src`` to a new directory ``dst``: files, folders and symlinks, with
    their permission bits; everything fsynced, folders included."""

    def put(path: str, target: str) -> int:
        copy_file_durable(Path(path), Path(target))  # with the source's permission bits
        return os.lstat(target).st_size

    _rebuild_tree(src, dst, put)


def fsync_tree(root: Path) -> None:
    """fsync every regular file and folder below ``root`` (and ``root``)."""
    files, folders = tree_members(root)
    fsync_many(files, folders)


def tree_members(root: Path) -> tuple[list[str], list[str]]:
    """The regular files below ``root``, and its folders deepest first (``root`` last).

    Symlinks are neither followed nor listed.
    """
    files: list[str] = []
    folders: list[str] = []
    pending = [str(root)]
    while pending:
        folder = pending.pop()
        folders.append(folder)
        with os.scandir(folder) as listing:
            for entry in listing:
                if entry.is_dir(follow_symlinks=False):
                    pending.append(entry.path)
                elif entry.is_file(follow_symlinks=False):
                    files.append(entry.path)
    return files, folders[::-1]


# files fsynced together by fsync_many: their descriptors are open at the same time
_FSYNC_BATCH = 256


def fsync_many(files: Iterable[Path | str], folders: Iterable[Path | str] = ()) -> None:
    """fsync each of ``files``, then each of ``folders`` (in the order given).

    The write-back of a batch of files is started for all of them before the first fsync
    waits (``sync_file_range(2)``), so the disk can take their data together rather than
    one file per fsync (what that saves is not measured apart: ``bench_files.py`` times
    whole promotions). Only the fsyncs make anything durable.
    """
    batch: list[Path | str] = []
    for path in files:
        batch.append(path)
        if len(batch) == _FSYNC_BATCH:
            _fsync_batch(batch)
            batch = []
    if batch:
        _fsync_batch(batch)
    for folder in dict.fromkeys(os.fspath(f) for f in folders):
        fsync_dir(Path(folder))


def _fsync_batch(paths: list[Path | str]) -> None:
    fds: list[int] = []
    try:
        for path in paths:
            fds.append(os.open(path, os.O_RDONLY))
        if len(fds) > 1:
            for fd in fds:
                _start_writeback(fd, 0, 0)  # length 0: to the end of the file
        for fd in fds:
            os.fsync(fd)
    finally:
        for fd in fds:
            os.close(fd)


def link_or_copy_file(src: str | Path, dst: str | Path) -> str:
    """Make ``dst`` a hard link of ``src`` (O(1)); copy when linking is impossible.

    Returns ``"link"`` or ``"copy"``.
    """
    try:
        os.link(src, dst, follow_symlinks=False)
        return "link"
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP):
            raise
    copy_file_durable(Path(src), Path(dst))
    return "copy"


class TreeCopy(NamedTuple):
    method: str  # "link", or "copy" when at least one file could not be linked
    files: int
    bytes: int


def link_or_copy_tree(src: Path, dst: Path) -> TreeCopy:
    """Rebuild directory ``src`` at ``dst`` with hard links to its files; copies if needed."""
    methods: set[str] = set()

    def put(path: str, target: str) -> int:
        methods.add(link_or_copy_file(path, target))
        return os.lstat(target).st_size

    files, size = _rebuild_tree(src, dst, put)
    return TreeCopy("copy" if "copy" in methods else "link", files, size)


def _libc_renameat2() -> Callable[..., int] | None:
    fn = getattr(_LIBC, "renameat2", None)
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
        import shutil  # only folders (it loads zlib, bz2 and lzma)

        shutil.rmtree(path)
    else:
        path.unlink()
