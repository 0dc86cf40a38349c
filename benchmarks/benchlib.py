"""Helpers shared by the benchmark scripts (imported from the scripts' own folder)."""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import liftgate

__all__ = [
    "REPO",
    "BenchError",
    "Row",
    "git_state",
    "median",
    "print_header",
    "print_summary",
    "print_table",
    "show",
    "unescape_mount",
]

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


@dataclass(frozen=True)
class Row:
    """One line of a benchmark's summary table."""

    figure: str
    value: str  # liftgate's figure, as printed
    reference: str  # what it is measured against (a baseline, a goal)
    ratio: float | None  # value / reference, when the figure has one
    goal: str
    verdict: str  # PASS, FAIL, INFO (no goal) or SKIP


def print_summary(
    rows: Sequence[Row], *, value: str = "liftgate", reference: str = "baseline"
) -> None:
    """The summary table of ``rows``, under the column titles ``value`` and ``reference``."""
    print_table(
        [
            ("figure", value, reference, "ratio", "goal", "result"),
            *[
                (
                    r.figure,
                    r.value,
                    r.reference,
                    "-" if r.ratio is None else f"{r.ratio:.2f}",
                    r.goal,
                    r.verdict,
                )
                for r in rows
            ],
        ]
    )


def print_header(title: str) -> None:
    """The first lines of every benchmark: what ran, from where, on what."""
    print(title)
    print(f"  python {platform.python_version()} at {sys.executable}")
    print(f"  liftgate {liftgate.__version__} from {Path(liftgate.__file__).parent}")
    print(f"  repository {REPO} at {git_state()}")
    print(f"  {platform.platform()}, {os.cpu_count()} CPUs")
    print(f"  {compile_package()}")


def compile_package() -> str:
    """Byte-compile liftgate's modules, as ``pip install`` does for a regular install, so
    that the processes timed do not compile them again each time (an editable install
    leaves them uncompiled, and PYTHONDONTWRITEBYTECODE stops Python writing them)."""
    import compileall

    package = Path(liftgate.__file__).parent
    if not compileall.compile_dir(str(package), quiet=1):
        raise BenchError(f"compileall could not byte-compile {package}")
    flag = os.environ.get("PYTHONDONTWRITEBYTECODE")
    return (
        f"liftgate's modules byte-compiled beforehand (compileall; PYTHONDONTWRITEBYTECODE "
        f"{'is set' if flag else 'is not set'} here)"
    )


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
