"""A file's digest and its identity, with nothing imported but ``hashlib`` and ``os``.

``liftgate promote`` hashes a large staged file before it loads the library
(``liftgate.engine.prefetch``), so what the hash needs must load without pathlib or typing.
``liftgate.engine.digest`` re-exports ``sha256_file`` and ``file_identity``; ``hash_file``
takes any ``hashlib`` object (the blob store's sha1).
"""

from __future__ import annotations

import hashlib
import os

__all__ = ["CHUNK", "file_identity", "hash_file", "sha256_file"]

CHUNK = 1 << 20  # the read size of liftgate's file loops (fsops re-exports it)


def sha256_file(path: str | os.PathLike[str], chunk: int = CHUNK) -> str:
    """The sha256 of a file's bytes (hex)."""
    return hash_file(path, hashlib.sha256(), chunk)


def hash_file(path: str | os.PathLike[str], digest: hashlib._Hash, chunk: int = CHUNK) -> str:
    """Feed a file's bytes to ``digest`` (a new ``hashlib`` object) and return its hex
    digest; the bytes are read in ``chunk``-byte pieces into one reused buffer."""
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
