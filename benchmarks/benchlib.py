"""Helpers shared by the benchmark scripts (imported from the scripts' own folder)."""

from __future__ import annotations

import argparse
import shlex
import shutil
import statistics
import subprocess
from collections.abc import Sequence
from pathlib import Path

__all__ = ["REPO", "BenchError", "git_state", "median", "print_table", "show", "unescape_mount"]

REPO = Path(__file__).resolve().parent.parent


class BenchError(RuntimeError):
    """Something the benchmark needs did not work (a command failed, a result was wrong)."""


def show(argv: Sequence[str]) -> str:
    return shlex.join(argv)


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def unescape_mount(field_: str) -> str:
    """A field of /proc/self/mounts, with its octal escapes undone."""
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        field_ = field_.replace(code, char)
    return field_


def print_table(cells: list[tuple[str, ...]]) -> None:
    """The summary table: ``cells[0]`` is the header; columns padded, a rule under it."""
    widths = [max(len(c[i]) for c in cells) for i in range(len(cells[0]))]
    for n, line in enumerate(cells):
        print("  " + "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())
        if n == 0:
            print("  " + "  ".join("-" * w for w in widths))


def git_state() -> str:
    git = shutil.which("git")
    if git is None or not (REPO / ".git").exists():
        return "unknown"
    head = subprocess.run(
        [git, "-C", str(REPO), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    dirty = subprocess.run(
        [git, "-C", str(REPO), "status", "--porcelain", "--", "src"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.splitlines()
    return f"{head or '?'}" + (f" + {len(dirty)} uncommitted change(s) under src/" if dirty else "")


def env_parser(doc: str | None, *, quick: str, repeats_help: str) -> argparse.ArgumentParser:
    """The options of the benchmarks that build the ~750 MB Odoo environment."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0] if doc else None)
    parser.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help=f"database and filestore size: 1 = ~750 MB + 10,000 files (~300 MB); {quick} quick",
    )
    parser.add_argument("--repeats", type=int, default=2, help=repeats_help)
    parser.add_argument(
        "--dir", default=None, help="folder to work in (default: a disk-backed folder)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    return parser


def check_env_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.scale <= 0:
        parser.error("--scale must be positive")
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
