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

from liftgate.engine.digest import path_kind
from liftgate.errors import OperationError
from liftgate.files.plan import FilePlan

__all__ = ["Change", "Preview", "preview", "text_diff", "tree_changes"]

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


def _lines(path: Path | None) -> list[str] | None:
    """The lines of a small UTF-8 text file; [] when there is no file; None otherwise."""
    if path is None or path_kind(path) == "absent":
        return []
    try:
        if os.stat(path).st_size > _DIFF_MAX_BYTES:
            return None
        return path.read_text(encoding="utf-8").splitlines(keepends=True)
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


def text_diff(
    new: Path | None, old: Path | None, label: str, limit: int = _DIFF_MAX_LINES
) -> str | None:
    """Unified diff from file ``old`` to file ``new`` (None for "no file"), or None when a
    side is not small UTF-8 text."""
    before, after = _lines(old), _lines(new)
    if before is None or after is None:
        return None
    return _capped(_unified(before, after, label), limit)


def _entries(root: Path | None) -> dict[str, tuple[str, os.stat_result, Path]]:
    """Every entry below ``root`` (not followed through symlinks): rel -> (kind, stat, path)."""
    out: dict[str, tuple[str, os.stat_result, Path]] = {}
    if root is None or path_kind(root) != "dir":
        return out
    stack = [root]
    while stack:
        current = stack.pop()
        with os.scandir(current) as listing:
            for entry in listing:
                path = Path(entry.path)
                st = entry.stat(follow_symlinks=False)
                if stat.S_ISDIR(st.st_mode):
                    kind = "dir"
                    stack.append(path)
                elif stat.S_ISLNK(st.st_mode):
                    kind = "symlink"
                else:
                    kind = "file"
                out[path.relative_to(root).as_posix()] = (kind, st, path)
    return out


def _same_file(a: Path, a_st: os.stat_result, b: Path, b_st: os.stat_result) -> bool:
    if a_st.st_size != b_st.st_size or bool(a_st.st_mode & 0o111) != bool(b_st.st_mode & 0o111):
        return False
    if (a_st.st_dev, a_st.st_ino) == (b_st.st_dev, b_st.st_ino):
        return True  # one inode (a hard-linked backup)
    with open(a, "rb") as fa, open(b, "rb") as fb:
        while True:
            chunk = fa.read(1 << 20)
            if chunk != fb.read(1 << 20):
                return False
            if not chunk:
                return True


def tree_changes(new: Path | None, old: Path | None) -> list[Change]:
    """What turning folder ``old`` into folder ``new`` changes (None or a missing folder:
    empty), sorted by path."""
    after, before = _entries(new), _entries(old)
    changes: list[Change] = []
    for rel in sorted(after.keys() | before.keys()):
        if rel not in before:
            changes.append(Change(rel, "added", after[rel][0]))
        elif rel not in after:
            changes.append(Change(rel, "removed", before[rel][0]))
        else:
            (kind, st, path), (old_kind, old_st, old_path) = after[rel], before[rel]
            if kind != old_kind:
                same = False
            elif kind == "file":
                same = _same_file(path, st, old_path, old_st)
            elif kind == "symlink":
                same = os.readlink(path) == os.readlink(old_path)
            else:
                same = True
            if not same:
                changes.append(Change(rel, "changed", kind))
    return changes


def _regular(root: Path | None, rel: str) -> Path | None:
    """``root/rel`` when it is a regular file (not a symlink): the side of a diff."""
    if root is None:
        return None
    path = root / rel
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    return path if stat.S_ISREG(st.st_mode) else None


def _tree_preview(new: Path | None, old: Path | None, label: str) -> Preview:
    changes = tree_changes(new, old)
    counts = {
        name: sum(1 for c in changes if c.change == name)
        for name in ("added", "removed", "changed")
    }
    diff: list[str] = []
    unshown = 0  # files whose diff was not even made: the cap was reached before them
    for change in changes:
        if change.kind != "file":
            continue
        if len(diff) > _DIFF_MAX_LINES:
            unshown += 1
            continue
        name = f"{label}/{change.path}"
        after = _regular(new, change.path) if change.change != "removed" else None
        before = _regular(old, change.path) if change.change != "added" else None
        a_lines, b_lines = _lines(before), _lines(after)
        if a_lines is None or b_lines is None:
            diff.append(f"Binary files a/{name} and b/{name} differ (or too large to show)\n")
            continue
        lines = _unified(a_lines, b_lines, name)
        if not lines and before is not None and after is not None:  # only the mode changed
            was, now = (bool(os.stat(p).st_mode & 0o111) for p in (before, after))
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
        return Preview(diff=text_diff(new, target, plan.target_display), changes=None)
    except OSError as exc:
        raise OperationError(
            f"cannot compare {plan.target_display} with what would replace it "
            f"({exc.strerror or exc}: {exc.filename}); nothing was changed"
        ) from exc
