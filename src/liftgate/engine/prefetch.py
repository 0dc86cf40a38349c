"""Digest prefetch: hash a large staged file while the command is still starting.

Every promotion records the staged file's sha256, and for a large file that one pass is
the longest part of the command. ``liftgate promote`` therefore starts it (``start``) in a
background thread before it loads the library: the hash runs on another core while the
interpreter imports modules, reads the config, takes the lock and plans. The copy step
then asks for the digest (``job``) instead of hashing again.

A digest is only ever used for the bytes it was computed from. A job carries the file's
identity (device, inode, size, mtime, ctime) from the moment its hash began; ``job`` hands
it out only when that is the identity the copy step sees when it starts, and the copy step
checks the same identity again after its copy and comparison, so the hash, the copy and the
comparison all read the same bytes. Otherwise a new hash is started.

A prefetch only reads. It starts before the command has checked the path against the
project's roots; a path the command then refuses was read, hashed and forgotten.
"""

from __future__ import annotations

import _thread
import os
import stat
import sys

# only these two light modules: the hash begins before pathlib, typing or threading load
from liftgate.engine.filehash import file_identity, sha256_file

__all__ = ["LARGE", "DigestJob", "job", "start"]

LARGE = 1 << 20  # larger files are copied by the kernel and hashed in a second thread
# 8 MiB reads: the hashing thread needs the GIL between two chunks and, while the main
# thread runs Python code, waits up to a switch interval for it each time
_CHUNK = 8 << 20
# while a prefetch runs, the main thread hands the GIL over after 0.5 ms instead of 5 ms
# when the hashing thread asks for it (once per chunk), so the imports slow the hash less
_SWITCH_INTERVAL = 0.0005

Identity = tuple[int, int, int, int, int]


class DigestJob:
    """The sha256 of one file, computed in a background thread.

    The thread is a bare ``_thread`` one (``threading`` would add its import to the time
    before the hash begins); ``_done`` is held until the digest or the error is set.
    ``switch_interval`` (``start`` passes one) lowers the interpreter's switch interval
    until the hash ends, then puts the previous one back.
    """

    def __init__(
        self, path: str, identity: Identity, *, switch_interval: float | None = None
    ) -> None:
        self.path = path
        self.identity = identity
        self._digest: str | None = None
        self._error: BaseException | None = None
        self._done = _thread.allocate_lock()
        self._done.acquire()
        self._restore: float | None = None
        if switch_interval is not None:
            self._restore = sys.getswitchinterval()
            sys.setswitchinterval(min(switch_interval, self._restore))
        _thread.start_new_thread(self._run, ())

    def _run(self) -> None:
        try:
            self._digest = sha256_file(self.path, _CHUNK)
        except BaseException as exc:  # raised again by result(), in the caller's thread
            self._error = exc
        finally:
            if self._restore is not None:
                sys.setswitchinterval(self._restore)
            self._done.release()

    def result(self) -> str:
        """Wait for the digest; raises what the hash raised (OSError: the file could not be
        read)."""
        with self._done:
            pass
        if self._error is not None:
            raise self._error
        assert self._digest is not None
        return self._digest


_started: dict[str, DigestJob] = {}


def _identity_of(path: str) -> Identity | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    if not stat.S_ISREG(st.st_mode) or st.st_size <= LARGE:
        return None
    return file_identity(st)


def start(path: str | os.PathLike[str]) -> None:
    """Begin hashing ``path`` in the background when it is a regular file larger than
    ``LARGE`` (and is not being hashed already); otherwise do nothing."""
    real = os.path.realpath(path)
    identity = _identity_of(real)
    if identity is None:
        return
    known = _started.get(real)
    if known is None or known.identity != identity:
        _started[real] = DigestJob(real, identity, switch_interval=_SWITCH_INTERVAL)


def job(path: str | os.PathLike[str], st: os.stat_result) -> DigestJob:
    """The digest job for ``path`` as ``st`` describes it: the one ``start`` began, when
    the file's identity is still the one it began with; a new one otherwise."""
    real = os.path.realpath(path)
    started = _started.pop(real, None)
    if started is not None and started.identity == file_identity(st):
        return started
    return DigestJob(real, file_identity(st))
