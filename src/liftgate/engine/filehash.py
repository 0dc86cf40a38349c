"""A file's sha256 and its identity, with nothing imported but ``hashlib`` and ``os``.

``liftgate promote`` hashes a large staged file before it loads the library
(``liftgate.engine.prefetch``), so what the hash needs must load in a few milliseconds:
``liftgate.engine.digest`` (pathlib, typing) re-exports both functions for everything else.
"""

from __future__ import annotations

import hashlib
import os

__all__ = ["file_identity", "sha256_file"]

_CHUNK = 1 << 20


def sha256_file(path: str | os.PathLike[str], chunk: int = _CHUNK) -> str:
    """The sha256 of a file's bytes, read in ``chunk``-byte pieces into one reused buffer."""
    digest = hashlib.sha256()
    with open(path, "rb", buffering=0) as fh:
        buf = bytearray(chunk)
        view = memoryview(buf)
        while n := fh.readinto(buf):
            digest.update(view[:n])
    return digest.hexdigest()


def file_identity(st: os.stat_result) -> tuple[int, int, int, int, int]:
    """What changes whenever a file's bytes do: device, inode, size, mtime and ctime
    (ctime cannot be set by user tools)."""
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
