"""Every path a user gives is resolved (symlinks included) and checked against its roots."""

from __future__ import annotations

import errno
import os
from pathlib import Path

from liftgate.errors import PathError

__all__ = ["GLOB_CHARS", "display", "resolve_user_path"]

GLOB_CHARS = frozenset("*?[]{}")


def display(path: Path, base: Path) -> str:
    """``path`` relative to ``base`` when inside it, else absolute."""
    try:
        return path.relative_to(base).as_posix() or "."
    except ValueError:
        return str(path)


def resolve_user_path(
    raw: str,
    *,
    what: str,
    roots: tuple[Path, ...],
    forbidden: tuple[Path, ...],
    cwd: Path,
    allow_root: bool = False,
) -> Path:
    """Resolve ``raw`` against ``cwd`` and check it.

    Refused: empty names, NUL bytes, glob characters (no inference of targets), anything
    that resolves — after following every symlink — outside all ``roots`` or inside one of
    the ``forbidden`` folders (the state dir). Returns the resolved absolute path.
    """
    if not raw or not raw.strip():
        raise PathError(f"the {what} path is empty")
    if "\0" in raw:
        raise PathError(f"the {what} path contains a NUL byte")
    if GLOB_CHARS.intersection(raw):
        raise PathError(
            f"the {what} path {raw!r} contains glob characters; name one exact path",
            hint="liftgate never infers a target from a pattern",
        )
    candidate = os.path.join(cwd, raw)  # an absolute raw stays as it is
    try:
        real = os.path.realpath(candidate)
    except (OSError, RuntimeError, ValueError) as exc:
        raise PathError(f"the {what} path {raw!r} cannot be resolved: {exc}") from exc
    try:
        os.stat(real)  # realpath leaves a symlink loop in place: find it here
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise PathError(f"the {what} path {raw!r} cannot be resolved: symlink loop") from exc
    resolved = Path(real)
    inside = [root for root in roots if _within(real, str(root))]
    if not inside:
        listed = ", ".join(str(r) for r in roots)
        raise PathError(
            f"the {what} path {raw!r} resolves to {resolved}, outside the allowed roots ({listed})",
            hint="add its folder to [project] roots in liftgate.toml if it is meant to be managed",
        )
    if not allow_root and any(real == str(root) for root in inside):
        raise PathError(f"the {what} path {raw!r} is a root folder itself; name a path inside it")
    for folder in forbidden:
        if _within(real, str(folder)) or _within(str(folder), real):
            raise PathError(
                f"the {what} path {raw!r} resolves to {resolved}, which overlaps liftgate's "
                f"state folder {folder}"
            )
    return resolved


def _within(path: str, folder: str) -> bool:
    """Is ``path`` ``folder`` or below it? (both absolute and normalised)"""
    return path == folder or path.startswith(folder if folder.endswith("/") else folder + "/")
