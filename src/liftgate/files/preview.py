"""What a dry run shows: the changes a promotion or a rollback would make to its target.

For a file, a unified diff from what the target holds to what it would hold (when both
sides are small UTF-8 text). For a folder, every entry that would be added, removed or
changed (a file's bytes or executable bit, a symlink's destination, an entry's kind), plus
the unified diffs of the text files among them. Nothing here writes anything.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any, Literal, NamedTuple

from liftgate.engine.digest import tree_entries
from liftgate.errors import OperationError
from liftgate.files.plan import FilePlan

__all__ = ["Change", "Preview", "preview"]

# a text file larger than this gets no diff
_DIFF_MAX_BYTES = 8 << 20
# diff lines shown in all (the rest is counted)
_DIFF_MAX_LINES = 2000
# folder entries listed in the JSON result (all are counted)
_ENTRIES_MAX = 500

_YES_NO = {True: "yes", False: "no"}

ChangeKind = Literal["added", "removed", "changed"]


class Change(NamedTuple):
    """One entry of a folder that a switch would add, remove or change."""

    path: str  # relative to the folder, with forward slashes
    change: ChangeKind
    kind: str  # "file", "dir" or "symlink": what the entry is (after, or before a removal)


class Preview(NamedTuple):
    diff: str | None
    changes: dict[str, Any] | None  # folders only: counts, entries, more


def _lines(path: Path | None, size: int | None = None) -> list[str] | None:
    """The lines of a small UTF-8 text file (``size``: its size when already known); []
    when there is no file; None otherwise."""
    if path is None:
        return []
    try:
        if (os.stat(path).st_size if size is None else size) > _DIFF_MAX_BYTES:
            return None
        return path.read_text(encoding="utf-8").splitlines(keepends=True)
    except FileNotFoundError:
        return []
    except (UnicodeDecodeError, OSError):
        return None


def _unified(old: list[str], new: list[str], label: str) -> list[str]:
    import difflib

    lines = list(difflib.unified_diff(old, new, f"a/{label}", f"b/{label}"))
    # a last line without a newline would run into the next file's header
    return [
        line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines
    ]


def _capped(lines: list[str], limit: int, unshown: int = 0) -> str:
    """The first ``limit`` lines, then what was left out: lines, and files not diffed."""
    if len(lines) > limit:
        rest = f"{len(lines) - limit} more diff lines"
        if unshown:
            rest += f" and the diffs of {unshown} more files"
        lines = [*lines[:limit], f"... ({rest} not shown)\n"]
    return "".join(lines)


def _file_diff(new: Path | None, old: Path, label: str) -> str | None:
    """Unified diff from file ``old`` to file ``new`` (None: no file), or None when a side
    is not small UTF-8 text."""
    before, after = _lines(old), _lines(new)
    if before is None or after is None:
        return None
    return _capped(_unified(before, after, label), _DIFF_MAX_LINES)


Entry = tuple[os.stat_result, Path]


def _kind(st: os.stat_result) -> str:
    if stat.S_ISDIR(st.st_mode):
        return "dir"
    return "symlink" if stat.S_ISLNK(st.st_mode) else "file"


def _entries(root: Path | None) -> dict[str, Entry]:
    if root is None or not root.is_dir():
        return {}
    return {rel: (st, path) for rel, st, path in tree_entries(root)}


def _same(a: Entry, b: Entry) -> bool:
    """Would replacing entry ``b`` by entry ``a`` leave it as it was?"""
    (a_st, a_path), (b_st, b_path) = a, b
    kind = _kind(a_st)
    if kind != _kind(b_st):
        return False
    if kind == "symlink":
        return os.readlink(a_path) == os.readlink(b_path)
    if kind == "dir":
        return True
    if a_st.st_size != b_st.st_size or _executable(a_st) != _executable(b_st):
        return False
    if (a_st.st_dev, a_st.st_ino) == (b_st.st_dev, b_st.st_ino):
        return True  # one inode (a hard-linked backup)
    with open(a_path, "rb") as fa, open(b_path, "rb") as fb:
        while True:
            chunk = fa.read(1 << 20)
            if chunk != fb.read(1 << 20):
                return False
            if not chunk:
                return True


def _executable(st: os.stat_result) -> bool:
    return bool(st.st_mode & 0o111)


def _compare(new: Path | None, old: Path | None) -> list[tuple[Change, Entry | None, Entry | None]]:
    """What turning folder ``old`` into folder ``new`` changes (None or a missing folder:
    empty), sorted by path: each change with the entry after and before it (None: none)."""
    after, before = _entries(new), _entries(old)
    out: list[tuple[Change, Entry | None, Entry | None]] = []
    for rel in sorted(after.keys() | before.keys()):
        a, b = after.get(rel), before.get(rel)
        if b is None and a is not None:
            out.append((Change(rel, "added", _kind(a[0])), a, None))
        elif a is None and b is not None:
            out.append((Change(rel, "removed", _kind(b[0])), None, b))
        elif a is not None and b is not None and not _same(a, b):
            out.append((Change(rel, "changed", _kind(a[0])), a, b))
    return out


def _file_side(entry: Entry | None) -> Entry | None:
    """The side of a diff: a regular file, or nothing (a folder or symlink it replaces)."""
    return entry if entry is not None and stat.S_ISREG(entry[0].st_mode) else None


def _tree_preview(new: Path | None, old: Path | None, label: str) -> Preview:
    compared = _compare(new, old)
    changes = [change for change, _, _ in compared]
    counts = {
        name: sum(1 for c in changes if c.change == name)
        for name in ("added", "removed", "changed")
    }
    diff: list[str] = []
    unshown = 0  # files whose diff was not even made: the cap was reached before them
    for change, a, b in compared:
        if change.kind != "file":
            continue
        if len(diff) > _DIFF_MAX_LINES:
            unshown += 1
            continue
        name = f"{label}/{change.path}"
        after, before = _file_side(a), _file_side(b)
        b_lines = _lines(before[1], before[0].st_size) if before else []
        a_lines = _lines(after[1], after[0].st_size) if after else []
        if a_lines is None or b_lines is None:
            diff.append(f"Binary files a/{name} and b/{name} differ (or too large to show)\n")
            continue
        lines = _unified(b_lines, a_lines, name)
        if not lines and before and after:  # the same text: only the executable bit changed
            was, now = _executable(before[0]), _executable(after[0])
            lines = [f"Executable bit of {name}: {_YES_NO[was]} -> {_YES_NO[now]}\n"]
        diff += lines
    return Preview(
        diff=_capped(diff, _DIFF_MAX_LINES, unshown) if diff else None,
        changes={
            "counts": counts,
            "entries": [c._asdict() for c in changes[:_ENTRIES_MAX]],
            "more": max(0, len(changes) - _ENTRIES_MAX),
        },
    )


def preview(plan: FilePlan) -> Preview:
    """The diff (and, for a folder, the list of changes) that running ``plan`` would make.

    OperationError when an entry vanishes or cannot be read while it is being compared."""
    target = plan.target_path
    new = None if plan.removes_target or plan.source is None else Path(plan.source)
    try:
        if plan.kind == "dir":
            return _tree_preview(new, target, plan.target_display)
        return Preview(diff=_file_diff(new, target, plan.target_display), changes=None)
    except OSError as exc:
        raise OperationError(
            f"cannot compare {plan.target_display} with what would replace it "
            f"({exc.strerror or exc}: {exc.filename}); nothing was changed"
        ) from exc
