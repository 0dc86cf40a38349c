"""Every path a user gives is resolved (symlinks included) and checked against its roots."""

from __future__ import annotations

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
    candidate = Path(raw)
    if not candidate.is_absolute():
        candidate = cwd / candidate
    try:
        resolved = candidate.resolve(strict=False)
    except (OSError, RuntimeError) as exc:
        raise PathError(f"the {what} path {raw!r} cannot be resolved: {exc}") from exc
    inside = [root for root in roots if resolved.is_relative_to(root)]
    if not inside:
        listed = ", ".join(str(r) for r in roots)
        raise PathError(
            f"the {what} path {raw!r} resolves to {resolved}, outside the allowed roots ({listed})",
            hint="add its folder to [project] roots in liftgate.toml if it is meant to be managed",
        )
    if not allow_root and any(resolved == root for root in inside):
        raise PathError(f"the {what} path {raw!r} is a root folder itself; name a path inside it")
    for folder in forbidden:
        if resolved == folder or resolved.is_relative_to(folder) or folder.is_relative_to(resolved):
            raise PathError(
                f"the {what} path {raw!r} resolves to {resolved}, which overlaps liftgate's "
                f"state folder {folder}"
            )
    return resolved
