#!/usr/bin/env python3
"""Benchmark liftgate's staged file promotion against hand-written baselines.

Every figure is a ratio against a baseline measured in the same run, on the same
(disk-backed) filesystem:

1. promoting a large (default 200 MB) random file through the CLI vs ``cp`` + ``sync``,
   with the target already there (the repeated-promotion case, with a backup) and, as an
   extra line, without it (first promotion); as references, one sha256 pass and a bare
   Python process that only copies, hashes, fsyncs and renames (the floor of any Python CLI);
2. ``--count`` sequential promotions of a small (2-4 KB) file onto the same target through
   the library API vs a hand-written loop with the same durability;
3. the CLI's median latency for one small promotion, next to the start-up of the same
   interpreter (``python -c pass``) and the imports of the file commands
   (``import liftgate.cli.filecmd, liftgate.files.api``);
4. small promotions while another process keeps rewriting a 512 MB file without syncing
   (a busy database on the same disk): liftgate's default ``[durability] flush = "files"``,
   ``flush = "filesystem"`` and the hand loop of 2., as references.

Usage::

    python benchmarks/bench_files.py [--size-mb 200] [--count 1000] [--cli-count 30]
                                     [--busy-count 20] [--repeats 3] [--dir DIR]
                                     [--profile N] [--keep]

It is a measurement, not a test: it exits 0 whether the goals pass or fail, and non-zero
only when something errors.
"""

from __future__ import annotations

import argparse
import base64
import cProfile
import hashlib
import io
import json
import mmap
import os
import pstats
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ParamSpec

from benchlib import (
    REPO,
    BenchError,
    Row,
    median,
    print_header,
    print_summary,
    show,
    unescape_mount,
)
from liftgate.engine.project import Project
from liftgate.files.api import promote

GOAL = 1.5
MB = 1 << 20
CHUNK = 8 * MB
# filesystems that live in memory: fsync costs nothing there, so they would flatter both sides
MEMORY_FS = frozenset({"tmpfs", "ramfs", "devtmpfs", "hugetlbfs", "shm"})
GENESIS = "0" * 64
P = ParamSpec("P")


# --------------------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------------------


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def secs(seconds: float) -> str:
    return f"{seconds:.3f} s"


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def write_random(path: Path, size: int) -> None:
    """``size`` bytes of os.urandom, written in chunks (not fsynced: the caller syncs)."""
    with path.open("wb") as fh:
        left = size
        while left:
            n = min(left, CHUNK)
            fh.write(os.urandom(n))
            left -= n


def small_content(rng: random.Random) -> bytes:
    """2-4 KB of config-like text: base64 lines of random bytes."""
    size = rng.randint(2048, 4096)
    raw = base64.b64encode(os.urandom(size)).decode()
    lines = [f"key_{n:03d} = {raw[i : i + 60]}" for n, i in enumerate(range(0, len(raw), 60))]
    return ("\n".join(lines) + "\n").encode()[:size]


def run_checked(argv: Sequence[str], cwd: Path) -> str:
    proc = subprocess.run(list(argv), cwd=cwd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise BenchError(
            f"{show(argv)} exited {proc.returncode}\nstdout: {proc.stdout.strip()}\n"
            f"stderr: {proc.stderr.strip()}"
        )
    return proc.stdout


def timed(fn: Callable[P, object], *args: P.args, **kwargs: P.kwargs) -> float:
    """Wall-clock seconds of one call."""
    started = time.perf_counter()
    fn(*args, **kwargs)
    return time.perf_counter() - started


def check_promoted(stdout: str, argv: Sequence[str]) -> None:
    try:
        payload: Any = json.loads(stdout)
    except ValueError as exc:
        raise BenchError(f"{show(argv)} did not print JSON: {stdout!r}") from exc
    if not isinstance(payload, dict) or payload.get("status") != "OK":
        raise BenchError(f"{show(argv)} did not promote: {stdout.strip()}")


# --------------------------------------------------------------------------------------
# where to work: a disk-backed folder, on the repository's filesystem when possible
# --------------------------------------------------------------------------------------


def fs_type(path: Path) -> str:
    """The filesystem type holding ``path`` (longest mount prefix in /proc/self/mounts)."""
    path = path.resolve()
    try:
        mounts = Path("/proc/self/mounts").read_text(encoding="utf-8")
    except OSError:
        mounts = ""
    best, kind = -1, ""
    for line in mounts.splitlines():
        parts = line.split()
        if len(parts) < 3:
            continue
        point = Path(unescape_mount(parts[1]))
        if path.is_relative_to(point) and len(point.parts) > best:
            best, kind = len(point.parts), parts[2]
    if kind:
        return kind
    stat_bin = shutil.which("stat")
    if stat_bin:  # not Linux /proc: ask coreutils
        proc = subprocess.run(
            [stat_bin, "-f", "-c", "%T", str(path)], capture_output=True, text=True, check=False
        )
        if proc.returncode == 0:
            return proc.stdout.strip()
    return "unknown"


@dataclass
class WorkDir:
    base: Path
    fs: str
    why: str


def choose_base(requested: str | None) -> WorkDir:
    repo_dev = REPO.stat().st_dev
    tmp = Path(tempfile.gettempdir())
    print(f"  {tmp}: {fs_type(tmp)}")
    if requested is not None:
        base = Path(requested).resolve()
        base.mkdir(parents=True, exist_ok=True)
        kind = fs_type(base)
        why = "--dir"
        if kind in MEMORY_FS:
            why += f" (WARNING: {kind} is memory-backed; fsync is nearly free there)"
        return WorkDir(base, kind, why)
    candidates = [Path("/var/tmp"), REPO.parent, tmp]
    usable: list[WorkDir] = []
    for cand in candidates:
        if not cand.is_dir() or not os.access(cand, os.W_OK | os.X_OK):
            continue
        kind = fs_type(cand)
        print(
            f"  {cand}: {kind}, {'same' if cand.stat().st_dev == repo_dev else 'other'} "
            "device as the repository"
        )
        if kind in MEMORY_FS:
            continue
        same = cand.stat().st_dev == repo_dev
        usable.append(
            WorkDir(
                cand,
                kind,
                "disk-backed, same filesystem as the repository"
                if same
                else "disk-backed (not the repository's filesystem)",
            )
        )
        if same:
            return usable[-1]
    if usable:
        return usable[0]
    raise BenchError("no disk-backed writable folder found; pass --dir DIR")


# --------------------------------------------------------------------------------------
# a liftgate project in a folder
# --------------------------------------------------------------------------------------
PROJECT_CONFIG = '[project]\nroots = ["."]\n'
FILESYSTEM_FLUSH_CONFIG = PROJECT_CONFIG + '\n[durability]\nflush = "filesystem"\n'


def make_project(root: Path, config: str = PROJECT_CONFIG) -> Path:
    for sub in ("staged", "live"):
        (root / sub).mkdir(parents=True)
    (root / "liftgate.toml").write_text(config, encoding="utf-8")
    return root


def cli_argv(staged: Path, target: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "liftgate",
        "promote",
        str(staged),
        "--target",
        str(target),
        "--json",
    ]


def cli_promote(project: Path, staged: Path, target: Path) -> None:
    argv = cli_argv(staged, target)
    check_promoted(run_checked(argv, project), argv)


# --------------------------------------------------------------------------------------
# 1. a large file through the CLI vs cp + sync
# --------------------------------------------------------------------------------------
@dataclass
class LargeResult:
    repeated_lg: list[float] = field(default_factory=list)
    repeated_cp: list[float] = field(default_factory=list)
    first_lg: list[float] = field(default_factory=list)
    first_cp: list[float] = field(default_factory=list)
    inplace_cp: list[float] = field(default_factory=list)
    sha256: list[float] = field(default_factory=list)
    floor: list[float] = field(default_factory=list)  # FLOOR_SCRIPT as its own process


# The least any promotion written in Python does, run as its own process like the CLI: start
# the interpreter, copy in the kernel while a second thread hashes the source, fsync the copy,
# rename it over the target and fsync the folder. No config, lock, journal, backup, history,
# evidence or read-back comparison: a floor, not a competitor.
FLOOR_SCRIPT = """\
import hashlib, os, sys, threading
src, dst = sys.argv[1], sys.argv[2]
fi = os.open(src, os.O_RDONLY)
tmp = dst + ".floor-tmp"
fo = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
digest = hashlib.sha256()
def hash_source():
    buf = bytearray(1 << 20)
    view, offset = memoryview(buf), 0
    while n := os.preadv(fi, [buf], offset):
        digest.update(view[:n])
        offset += n
hasher = threading.Thread(target=hash_source)
hasher.start()
while os.copy_file_range(fi, fo, 1 << 30):
    pass
os.fsync(fo)
hasher.join()
os.close(fo)
os.replace(tmp, dst)
folder = os.open(os.path.dirname(dst), os.O_RDONLY | os.O_DIRECTORY)
os.fsync(folder)
print(digest.hexdigest())
"""


def touch_fresh(size: int) -> tuple[float, float]:
    """Seconds to write one byte per page of ``size`` bytes of new anonymous memory, the
    first time and a second time (this VM gives unused pages back to its host)."""
    with mmap.mmap(-1, size) as area:
        times = []
        for value in (1, 2):
            started = time.perf_counter()
            for offset in range(0, size, mmap.PAGESIZE):
                area[offset] = value
            times.append(time.perf_counter() - started)
    return times[0], times[1]


def create_cost(folder: Path, count: int = 1000) -> float:
    """Mean seconds to create (O_CREAT|O_EXCL) and close one new empty file in ``folder``."""
    folder.mkdir()
    started = time.perf_counter()
    for i in range(count):
        os.close(os.open(folder / f"f{i}", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    spent = time.perf_counter() - started
    shutil.rmtree(folder)
    return spent / count


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb", buffering=0) as fh:
        while chunk := fh.read(MB):
            digest.update(chunk)
    return digest.hexdigest()


def bench_large(work: Path, size: int, repeats: int) -> LargeResult:
    root = work / "large"
    project = make_project(root / "project")
    base = root / "baseline"
    base.mkdir()
    cp_bin = shutil.which("cp")
    sync_bin = shutil.which("sync")
    if cp_bin is None or sync_bin is None:
        raise BenchError("cp and sync are needed for the large-file baseline")
    live, baseline_target = project / "live" / "big.bin", base / "big.bin"
    floor_script = root / "floor.py"
    floor_script.write_text(FLOOR_SCRIPT, encoding="utf-8")
    floor_argv = [sys.executable, str(floor_script)]
    sha256_bin = shutil.which("sha256sum")
    if sha256_bin is None:
        raise BenchError("sha256sum is needed to check the floor script's copy")

    def cp_sync(staged: Path, target: Path) -> None:
        run_checked([cp_bin, str(staged), str(target)], base)
        run_checked([sync_bin], base)

    print(f"  liftgate: {show(cli_argv(project / 'staged' / 'big-N.bin', live))}")
    print(f"            (cwd {project}; the interpreter's -m form, not the console script)")
    cp_shown = show([cp_bin, str(project / "staged" / "big-N.bin"), str(baseline_target)])
    print(f"  baseline: {cp_shown} && {sync_bin}   (the destination removed first: cp creates")
    print("            a new file, as liftgate does; cp over an existing file is shown apart)")
    print(
        f"  floor:    {show([*floor_argv, 'STAGED', str(base / 'floor.bin')])}   (reference: "
        "a new\n            process that only copies (copy_file_range) while a thread hashes, "
        "fsyncs, renames\n            and fsyncs the folder; no config, lock, journal, backup, "
        "history or evidence)"
    )
    print(
        "  before every timed run: staged file written beforehand, then sync (os.sync); "
        "no cache dropping"
    )

    # the previous promotion: a different random file made both targets
    seed = project / "staged" / "big-0.bin"
    write_random(seed, size)
    os.sync()
    cli_promote(project, seed, live)
    cp_sync(seed, baseline_target)
    floor_target = base / "floor.bin"
    run_checked([*floor_argv, str(seed), str(floor_target)], base)
    seed.unlink()

    result = LargeResult()
    for rep in range(repeats):
        staged = project / "staged" / f"big-{rep + 1}.bin"
        write_random(staged, size)
        os.sync()
        first_lg, first_cp = project / "live" / f"first-{rep}.bin", base / f"first-{rep}.bin"
        order = ("liftgate", "cp") if rep % 2 == 0 else ("cp", "liftgate")
        for side in order:  # the target exists: repeated promotion, with a backup
            os.sync()
            if side == "liftgate":
                result.repeated_lg.append(timed(cli_promote, project, staged, live))
            else:
                # cp writes a new file, as liftgate must (the old one is kept as the backup)
                baseline_target.unlink(missing_ok=True)
                os.sync()
                result.repeated_cp.append(timed(cp_sync, staged, baseline_target))
        # for reference only: cp over an existing file rewrites it in place (not atomic)
        os.sync()
        result.inplace_cp.append(timed(cp_sync, staged, baseline_target))
        # for reference only: one sha256 pass over the staged file (from the page cache), the
        # digest every promotion must record; no promotion can take less
        result.sha256.append(timed(sha256_of, staged))
        # for reference only: the bare Python floor, in cp's conditions (its previous output
        # removed just before, as cp's destination is: see the benchmarks README on pages)
        floor_target.unlink()
        os.sync()
        result.floor.append(timed(run_checked, [*floor_argv, str(staged), str(floor_target)], base))
        if run_checked([sha256_bin, str(floor_target)], base).split()[0] != sha256_of(staged):
            raise BenchError("the floor script's copy differs from the staged file")
        for side in order:  # the target does not exist yet: first promotion
            os.sync()
            if side == "liftgate":
                result.first_lg.append(timed(cli_promote, project, staged, first_lg))
            else:
                result.first_cp.append(timed(cp_sync, staged, first_cp))
        print(
            f"  run {rep + 1}/{repeats} ({' then '.join(order)}): "
            f"exists: liftgate {secs(result.repeated_lg[-1])}, cp+sync "
            f"{secs(result.repeated_cp[-1])}; first: liftgate {secs(result.first_lg[-1])}, "
            f"cp+sync {secs(result.first_cp[-1])}; cp over the existing file "
            f"{secs(result.inplace_cp[-1])}; sha256 alone {secs(result.sha256[-1])}; "
            f"bare Python floor {secs(result.floor[-1])}"
        )
        for path in (staged, first_lg, first_cp):
            path.unlink()
        os.sync()
    return result


# --------------------------------------------------------------------------------------
# 2. small files through the library API vs a hand-written durable loop
# --------------------------------------------------------------------------------------
HAND_STEPS = """\
    data = staged_i.read_bytes()
    open(<live>/.<name>.tmp-<i>, O_WRONLY|O_CREAT|O_EXCL); write(data); fsync; close
    os.link(<live>/<name>, <backups>/<name>.<i>); fsync(<backups>/)
    os.replace(<live>/.<name>.tmp-<i>, <live>/<name>); fsync(<live>/)
    line = json.dumps({seq, prev: sha256(previous line), target, sha256(data), backup, ts})
    open(<history.jsonl>, O_WRONLY|O_APPEND); write(line + "\\n"); fsync; close"""


class HandPromoter:
    """What a careful script would do by hand, with the durability liftgate promises."""

    def __init__(self, root: Path, *, evidence: bool = False) -> None:
        self.backups = root / "backups"
        self.backups.mkdir(parents=True)
        self.history = root / "history.jsonl"
        self.prev = GENESIS
        self.seq = 0
        # evidence=True: also the evidence folder the issue asks of every run (reference only)
        self.evidence = root / "evidence" if evidence else None
        if self.evidence is not None:
            self.evidence.mkdir()

    def promote(self, staged: Path, target: Path, n: int) -> None:
        data = staged.read_bytes()
        tmp = target.with_name(f".{target.name}.tmp-{n}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        backup: Path | None = None
        if target.exists():
            backup = self.backups / f"{target.name}.{n}"
            backup.hardlink_to(target)
            fsync_dir(self.backups)
        tmp.replace(target)
        fsync_dir(target.parent)
        self.seq += 1
        record = {
            "seq": self.seq,
            "prev": self.prev,
            "target": str(target),
            "sha256": hashlib.sha256(data).hexdigest(),
            "backup": str(backup) if backup else None,
            "ts": time.time(),
        }
        line = json.dumps(record, sort_keys=True, separators=(",", ":")).encode()
        if self.evidence is not None:
            self.write_evidence(n, record)
        new = not self.history.exists()
        fd = os.open(self.history, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            write_all(fd, line + b"\n")
            os.fsync(fd)
        finally:
            os.close(fd)
        if new:
            fsync_dir(self.history.parent)
        self.prev = hashlib.sha256(line).hexdigest()

    def write_evidence(self, n: int, record: dict[str, object]) -> None:
        """evidence/<n>/: the six files the issue names plus guardrails.json, each written
        whole under a temp name and renamed, the manifest last."""
        assert self.evidence is not None
        folder = self.evidence / f"{n:06d}"
        folder.mkdir()
        body = json.dumps(record, sort_keys=True).encode() + b"\n"
        files = {
            "run_id.txt": f"{n:06d}\n".encode(),
            "inputs.json": body,
            "plan.json": body,
            "guardrails.json": body,
            "summary.md": b"# promoted\n\n" + body,
            "final_status.json": body,
        }
        files["MANIFEST.sha256"] = "".join(
            f"{hashlib.sha256(data).hexdigest()}  {name}\n" for name, data in sorted(files.items())
        ).encode()
        for name, data in files.items():
            tmp = folder / f".{name}.tmp"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                write_all(fd, data)
            finally:
                os.close(fd)
            tmp.replace(folder / name)
        for name in files:  # the bundle made durable: each file, its folder, the folder's entry
            fd = os.open(folder / name, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_dir(folder)
        fsync_dir(self.evidence)


@dataclass
class SmallResult:
    liftgate: list[float] = field(default_factory=list)
    hand: list[float] = field(default_factory=list)
    evidence: list[float] = field(default_factory=list)  # hand loop + evidence folder
    filesystem: list[float] = field(default_factory=list)  # liftgate, flush = "filesystem"
    project: Path = Path()


def write_small_staged(folder: Path, prefix: str, count: int, rng: random.Random) -> list[Path]:
    paths = []
    for i in range(count):
        path = folder / f"{prefix}-{i:05d}.conf"
        path.write_bytes(small_content(rng))
        paths.append(path)
    return paths


def lg_promote(project: Project, staged: Path, target: Path) -> None:
    result = promote(project, str(staged), str(target))
    if result.status != "OK":
        raise BenchError(f"liftgate promote {staged} -> {target}: {result.status} {result.message}")


def copy_staged(staged: list[Path], folder: Path) -> list[Path]:
    """The same staged files, byte for byte, in ``folder`` (a second project's)."""
    copies = [folder / path.name for path in staged]
    for source, copy in zip(staged, copies, strict=True):
        copy.write_bytes(source.read_bytes())
    return copies


def time_rotating(
    count: int, block: int, sides: dict[str, Callable[[int], object]]
) -> dict[str, list[float]]:
    """Seconds of each call ``sides[name](i)`` for i in 1..count, in blocks of ``block``
    items per side; the side that goes first rotates from block to block, so drift in the
    machine hits every side alike."""
    order = list(sides)
    spent: dict[str, list[float]] = {name: [] for name in order}
    for start in range(1, count + 1, block):
        items = range(start, min(start + block, count + 1))
        turn = (start // block) % len(order)
        for name in order[turn:] + order[:turn]:
            for i in items:
                began = time.perf_counter()
                sides[name](i)
                spent[name].append(time.perf_counter() - began)
    return spent


def bench_small(work: Path, count: int, rng: random.Random) -> SmallResult:
    root = work / "small"
    project_dir = make_project(root / "project")
    hand_root = root / "baseline"
    (hand_root / "live").mkdir(parents=True)
    target = project_dir / "live" / "app.conf"
    hand_target = hand_root / "live" / "app.conf"
    hand = HandPromoter(hand_root)
    ev_root = root / "reference"
    (ev_root / "live").mkdir(parents=True)
    ev_target = ev_root / "live" / "app.conf"
    with_evidence = HandPromoter(ev_root, evidence=True)
    print(f"  liftgate: project = Project.open(cwd={str(project_dir)!r})  # once")
    print(f"            promote(project, staged_i, {str(target)!r})  # x{count}, new content each")
    print(f"  baseline: per promotion, the same staged_i onto {hand_target}:")
    print(
        HAND_STEPS.replace("<live>", str(hand_target.parent))
        .replace("<name>", "app.conf")
        .replace("<backups>", str(hand.backups))
        .replace("<history.jsonl>", str(hand.history))
    )
    print(
        f"  reference (not a goal): the same loop onto {ev_target}, plus per promotion the "
        "evidence folder the issue asks of every run\n"
        "    (mkdir evidence/<i>; run_id.txt, inputs.json, plan.json, guardrails.json, "
        "summary.md, final_status.json, MANIFEST.sha256,\n"
        "    each temp + rename, then an fsync of each, of evidence/<i>/ and of evidence/), "
        "as liftgate's default flush mode does"
    )

    fs_dir = make_project(root / "filesystem-flush", FILESYSTEM_FLUSH_CONFIG)
    fs_target = fs_dir / "live" / "app.conf"
    print(
        f"  reference (not a goal): liftgate in {str(fs_dir)!r}, whose liftgate.toml sets "
        '[durability] flush = "filesystem"\n'
        "    (one syncfs per flush point instead of the default fsync of each file and folder "
        "a run writes)"
    )

    staged = write_small_staged(project_dir / "staged", "small", count + 1, rng)
    fs_staged = copy_staged(staged, fs_dir / "staged")
    project = Project.open(cwd=project_dir)
    fs_project = Project.open(cwd=fs_dir)
    try:
        # untimed: the first promotion creates the target (and liftgate's state)
        lg_promote(project, staged[0], target)
        lg_promote(fs_project, fs_staged[0], fs_target)
        hand.promote(staged[0], hand_target, 0)
        with_evidence.promote(staged[0], ev_target, 0)
        os.sync()
        spent = time_rotating(
            count,
            max(1, count // 10),
            {
                "liftgate": lambda i: lg_promote(project, staged[i], target),
                "hand": lambda i: hand.promote(staged[i], hand_target, i),
                "evidence": lambda i: with_evidence.promote(staged[i], ev_target, i),
                "filesystem": lambda i: lg_promote(fs_project, fs_staged[i], fs_target),
            },
        )
        result = SmallResult(**spent, project=project_dir)
    finally:
        project.close()
        fs_project.close()
    if not target.read_bytes() == hand_target.read_bytes() == fs_target.read_bytes():
        raise BenchError("liftgate's targets and the baseline's target ended up different")
    return result


def profile_small(work: Path, count: int, rng: random.Random, top: int = 15) -> None:
    """cProfile ``count`` more small promotions (after the timed ones; not part of a figure)."""
    root = work / "profile"
    project_dir = make_project(root / "project")
    target = project_dir / "live" / "app.conf"
    staged = write_small_staged(project_dir / "staged", "prof", count + 1, rng)
    project = Project.open(cwd=project_dir)
    try:
        lg_promote(project, staged[0], target)
        os.sync()
        profiler = cProfile.Profile()
        started = time.perf_counter()
        profiler.enable()
        for path in staged[1:]:
            lg_promote(project, path, target)
        profiler.disable()
        wall = time.perf_counter() - started
    finally:
        project.close()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("cumulative").print_stats(top)
    print(
        f"  {count} promotions under cProfile: {ms(wall / count)} per promotion "
        "(profiler overhead included)"
    )
    print(out.getvalue().rstrip())
    raw: dict[tuple[str, int, str], tuple[int, int, float, float, Any]] = stats.stats  # type: ignore[attr-defined]
    print("  by phase, per promotion (cumulative; indented = part of the line above):")
    for label, suffix, func in PHASES:
        found = [
            (calls, tottime, cumtime)
            for (path, _, name), (_, calls, tottime, cumtime, _) in raw.items()
            if name == func and path.endswith(suffix)
        ]
        if not found:
            continue
        calls = sum(f[0] for f in found)
        spent = sum(f[1] if suffix == "~" else f[2] for f in found)
        print(f"    {label:<44} {ms(spent / count):>10}  {calls / count:5.1f} calls")


# (label, file suffix, function) for the phase table; "~" = a builtin (its own time)
PHASES: list[tuple[str, str, str]] = [
    ("files.api.promote (total)", "files/api.py", "promote"),
    ("  store.lock (enter + exit)", "store/sqlite.py", "lock"),
    ("  recover", "engine/recovery.py", "recover"),
    ("  plan_promotion", "files/plan.py", "plan_promotion"),
    ("  Run.start (ops row + evidence files)", "engine/runs.py", "start"),
    ("  _stage (copy + fsync)", "files/execute.py", "_stage"),
    ("  _backup (link + 2 dir fsyncs)", "files/execute.py", "_backup"),
    ("  _commit (replace + dir fsync)", "files/execute.py", "_commit"),
    ("  after_commit", "files/execute.py", "after_commit"),
    ("    _verify (re-hash target)", "files/execute.py", "_verify"),
    ("    _append_history", "files/execute.py", "_append_history"),
    ("    Run.finish", "engine/runs.py", "finish"),
    ("      EvidenceBundle.seal", "engine/evidence.py", "seal"),
    ("across phases: Run.mark (step journal)", "engine/runs.py", "mark"),
    ("across phases: EvidenceBundle.write_text", "engine/evidence.py", "write_text"),
    ("across phases: Redactor.data", "engine/redaction.py", "data"),
    ("across phases: Redactor.text (regexes)", "engine/redaction.py", "text"),
    ("across phases: os.fsync", "~", "<built-in method posix.fsync>"),
    ("across phases: os.open", "~", "<built-in method posix.open>"),
    ("across phases: sqlite3 execute", "~", "<method 'execute' of 'sqlite3.Connection' objects>"),
    ("across phases: pydantic model_dump", "pydantic/main.py", "model_dump"),
]


# --------------------------------------------------------------------------------------
# 4. small promotions while another process keeps the disk busy
# --------------------------------------------------------------------------------------
# The other program on the host (a database, a log shipper): it rewrites a large file in
# 4 MiB chunks, round and round, and never syncs, so the page cache always holds dirty data
# of someone else's. It prints how many bytes it wrote when told to stop (SIGTERM).
WRITER_SCRIPT = """\
import os, signal, sys
path, size = sys.argv[1], int(sys.argv[2])
chunk = os.urandom(4 << 20)
fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
written, offset, stop = 0, 0, False
def halt(signum, frame):
    global stop
    stop = True
signal.signal(signal.SIGTERM, halt)
print("ready", flush=True)
while not stop:
    written += os.pwrite(fd, chunk, offset)
    offset = (offset + len(chunk)) % size
os.close(fd)
print(written, flush=True)
"""


@dataclass
class BusyResult:
    files: list[float] = field(default_factory=list)  # liftgate, default flush = "files"
    filesystem: list[float] = field(default_factory=list)  # liftgate, flush = "filesystem"
    hand: list[float] = field(default_factory=list)
    written: int = 0  # bytes the writer wrote meanwhile
    seconds: float = 0.0  # how long it ran


def bench_busy(work: Path, count: int, rng: random.Random, size: int = 512 * MB) -> BusyResult:
    root = work / "busy"
    files_dir = make_project(root / "files-flush")
    fs_dir = make_project(root / "filesystem-flush", FILESYSTEM_FLUSH_CONFIG)
    hand_root = root / "baseline"
    (hand_root / "live").mkdir(parents=True)
    hand = HandPromoter(hand_root)
    targets = {
        "files": files_dir / "live" / "app.conf",
        "filesystem": fs_dir / "live" / "app.conf",
        "hand": hand_root / "live" / "app.conf",
    }
    staged = write_small_staged(files_dir / "staged", "busy", count + 1, rng)
    fs_staged = copy_staged(staged, fs_dir / "staged")
    writer_script = root / "writer.py"
    writer_script.write_text(WRITER_SCRIPT, encoding="utf-8")
    writer_argv = [sys.executable, str(writer_script), str(root / "busy.bin"), str(size)]
    print(f"  the other writer: {show(writer_argv)}")
    print(
        f"    (rewrites a {size // MB} MB file in 4 MiB chunks, round and round, never syncing; "
        "started before the timed promotions, stopped after)"
    )
    print(f'  liftgate, default flush = "files": promote(...) onto {targets["files"]}')
    print(f'  liftgate, flush = "filesystem":  promote(...) onto {targets["filesystem"]}')
    print(f"  baseline: the hand loop of [2] onto {targets['hand']}")
    files_project = Project.open(cwd=files_dir)
    fs_project = Project.open(cwd=fs_dir)
    writer: subprocess.Popen[str] | None = None
    try:
        lg_promote(files_project, staged[0], targets["files"])  # untimed: creates the targets
        lg_promote(fs_project, fs_staged[0], targets["filesystem"])
        hand.promote(staged[0], targets["hand"], 0)
        os.sync()
        writer = subprocess.Popen(writer_argv, stdout=subprocess.PIPE, text=True)
        assert writer.stdout is not None
        if writer.stdout.readline().strip() != "ready":
            raise BenchError("the background writer did not start")
        started = time.perf_counter()
        time.sleep(2.0)  # let it fill the page cache with dirty pages first
        spent = time_rotating(
            count,
            max(1, count // 4),
            {
                "files": lambda i: lg_promote(files_project, staged[i], targets["files"]),
                "filesystem": lambda i: lg_promote(fs_project, fs_staged[i], targets["filesystem"]),
                "hand": lambda i: hand.promote(staged[i], targets["hand"], i),
            },
        )
        writer.terminate()
        out, _ = writer.communicate(timeout=60)
        result = BusyResult(
            **spent,
            written=int(out.strip().splitlines()[-1]),
            seconds=time.perf_counter() - started,
        )
        writer = None
    finally:
        if writer is not None:
            writer.kill()
            writer.wait()
        files_project.close()
        fs_project.close()
    contents = {target.read_bytes() for target in targets.values()}
    if len(contents) != 1:
        raise BenchError("the busy-disk targets ended up different")
    return result


# --------------------------------------------------------------------------------------
# 3. CLI latency per small promotion, next to interpreter start-up
# --------------------------------------------------------------------------------------
@dataclass
class CliResult:
    promote: list[float] = field(default_factory=list)
    bare: list[float] = field(default_factory=list)
    imports: list[float] = field(default_factory=list)


def bench_cli(project_dir: Path, count: int, rng: random.Random) -> CliResult:
    target = project_dir / "live" / "cli.conf"
    staged = write_small_staged(project_dir / "staged", "cli", count + 1, rng)
    bare = [sys.executable, "-c", "pass"]
    imports = [sys.executable, "-c", "import liftgate.cli.filecmd, liftgate.files.api"]
    print(f"  liftgate:  {show(cli_argv(project_dir / 'staged' / 'cli-N.conf', target))}")
    print(f"             (cwd {project_dir}, which already holds the state of the API runs)")
    print(f"  start-up:  {show(bare)}")
    print(f"  import:    {show(imports)}")
    cli_promote(project_dir, staged[0], target)  # untimed: creates the target
    run_checked(bare, project_dir)
    run_checked(imports, project_dir)
    os.sync()
    result = CliResult()
    for i in range(1, count + 1):
        for job in range(i, i + 3):  # rotate which of the three goes first
            os.sync()
            if job % 3 == 0:
                result.promote.append(timed(cli_promote, project_dir, staged[i], target))
            elif job % 3 == 1:
                result.bare.append(timed(run_checked, bare, project_dir))
            else:
                result.imports.append(timed(run_checked, imports, project_dir))
    return result


# --------------------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------------------
def judged(ratio: float) -> str:
    return "PASS" if ratio <= GOAL else "FAIL"


def reference(figure: str, value: float, base: float, show_as: Callable[[float], str]) -> Row:
    """A row without a goal (INFO): ``value`` against ``base``."""
    return Row(figure, show_as(value), show_as(base), value / base, "none set", "INFO")


def goal_row(figure: str, value: float, base: float, show_as: Callable[[float], str]) -> Row:
    """A row judged against the goal (ratio <= GOAL)."""
    ratio = value / base
    return Row(figure, show_as(value), show_as(base), ratio, f"<= {GOAL}", judged(ratio))


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--size-mb", type=int, default=200, help="large file size (default 200)")
    parser.add_argument(
        "--count", type=int, default=1000, help="small promotions through the API (default 1000)"
    )
    parser.add_argument(
        "--cli-count", type=int, default=30, help="small promotions through the CLI (default 30)"
    )
    parser.add_argument(
        "--busy-count",
        type=int,
        default=20,
        help="small promotions per side while another process writes (default 20)",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="timed large promotions per side (default 3; medians are reported)",
    )
    parser.add_argument(
        "--dir",
        default=None,
        help="folder to work in (default: a disk-backed folder on the repo's fs)",
    )
    parser.add_argument(
        "--profile",
        type=int,
        default=0,
        metavar="N",
        help="also cProfile N small API promotions and print the top 15",
    )
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    parser.add_argument("--seed", type=int, default=1234, help="seed for the small file sizes")
    args = parser.parse_args(argv)
    for name in ("size_mb", "count", "cli_count", "busy_count", "repeats"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    size = args.size_mb * MB
    rng = random.Random(args.seed)
    print_header("liftgate file promotion benchmark")
    print("work folder:")
    where = choose_base(args.dir)
    need = size * (2 * args.repeats + 6) + 576 * MB  # + the busy writer's 512 MB file
    free = shutil.disk_usage(where.base).free
    if free < need:
        raise BenchError(f"{where.base} has {free // MB} MB free; this run needs ~{need // MB} MB")
    work = Path(tempfile.mkdtemp(prefix="liftgate-bench-", dir=where.base))
    print(f"  using {work} ({where.fs}: {where.why})")

    rows: list[Row] = []
    try:
        first, second = touch_fresh(256 * MB)
        creating = create_cost(work / "creates")
        print("\n[0] the machine (references for [1] and [2])")
        print(
            f"  256 MB of fresh anonymous memory, one byte per page: first touch {secs(first)}, "
            f"second {secs(second)}"
        )
        print(f"  a new empty file in the work folder (mean of 1,000): {ms(creating)}")
        rows.append(reference("fresh memory: first touch vs second (256 MB)", first, second, secs))
        print(
            f"\n[1] promote a {args.size_mb} MB random file through the CLI vs cp + sync "
            f"({args.repeats} runs per side, alternating; medians)"
        )
        large = bench_large(work, size, args.repeats)
        for label, lg, cp in (
            ("target exists (repeated promotion)", large.repeated_lg, large.repeated_cp),
            ("target absent (first promotion)", large.first_lg, large.first_cp),
        ):
            ratio = median(lg) / median(cp)
            print(
                f"  {label}: liftgate median {secs(median(lg))}, cp+sync median "
                f"{secs(median(cp))}, ratio {ratio:.2f}x (goal <= {GOAL})"
            )
        rows.append(
            goal_row(
                f"{args.size_mb} MB promote, target exists (CLI vs cp+sync, median)",
                median(large.repeated_lg),
                median(large.repeated_cp),
                secs,
            )
        )
        rows.append(
            goal_row(
                f"{args.size_mb} MB promote, first promotion (extra line)",
                median(large.first_lg),
                median(large.first_cp),
                secs,
            )
        )
        rows.append(
            reference(
                f"{args.size_mb} MB: cp+sync over the existing file, in place (reference)",
                median(large.inplace_cp),
                median(large.repeated_cp),
                secs,
            )
        )
        rows.append(
            reference(
                f"{args.size_mb} MB: bare Python copy+sha256+fsync process (floor, reference)",
                median(large.floor),
                median(large.repeated_cp),
                secs,
            )
        )
        rows.append(
            reference(
                f"{args.size_mb} MB: one sha256 pass over the staged file (floor, reference)",
                median(large.sha256),
                median(large.repeated_cp),
                secs,
            )
        )

        print(
            f"\n[2] {args.count} sequential small (2-4 KB) promotions onto one target: "
            "library API vs hand-written loop (blocks of "
            f"{max(1, args.count // 10)}, alternating)"
        )
        small = bench_small(work, args.count, rng)
        lg_mean, hand_mean = statistics.fmean(small.liftgate), statistics.fmean(small.hand)
        tenth = max(1, args.count // 10)
        print(
            f"  liftgate: mean {ms(lg_mean)}, median {ms(median(small.liftgate))}, "
            f"first {tenth} mean {ms(statistics.fmean(small.liftgate[:tenth]))}, "
            f"last {tenth} mean {ms(statistics.fmean(small.liftgate[-tenth:]))}"
        )
        print(f"  baseline: mean {ms(hand_mean)}, median {ms(median(small.hand))}")
        ev_mean = statistics.fmean(small.evidence)
        print(f"  reference (hand loop + evidence folder): mean {ms(ev_mean)}")
        fs_mean = statistics.fmean(small.filesystem)
        print(f'  reference (liftgate, flush = "filesystem"): mean {ms(fs_mean)}')
        print(f"  ratio of means {lg_mean / hand_mean:.2f}x (goal <= {GOAL})")
        print(
            f"  the evidence folder alone makes the hand loop {ev_mean / hand_mean:.2f}x; "
            f"liftgate is {lg_mean / ev_mean:.2f}x that reference"
        )
        rows.append(
            goal_row(
                f"small promote x{args.count}, API vs hand loop (mean each)", lg_mean, hand_mean, ms
            )
        )
        rows.append(
            reference(
                "small: hand loop + evidence folder vs hand loop (floor, reference)",
                ev_mean,
                hand_mean,
                ms,
            )
        )
        rows.append(
            reference("small: API vs hand loop + evidence folder (reference)", lg_mean, ev_mean, ms)
        )
        rows.append(
            reference(
                'small: API with flush = "filesystem" vs hand loop (reference)',
                fs_mean,
                hand_mean,
                ms,
            )
        )

        print(
            f"\n[3] CLI latency per small promotion ({args.cli_count} processes each, "
            "interleaved; medians)"
        )
        cli = bench_cli(small.project, args.cli_count, rng)
        cli_med, bare_med, imp_med = median(cli.promote), median(cli.bare), median(cli.imports)
        print(
            f"  liftgate promote (CLI): median {ms(cli_med)} "
            f"(min {ms(min(cli.promote))}, max {ms(max(cli.promote))})"
        )
        print(f"  python -c pass:         median {ms(bare_med)}")
        print(
            f"  file commands' imports: median {ms(imp_med)} "
            f"(import alone ~{ms(imp_med - bare_med)} over start-up)"
        )
        print(
            f"  => start-up {ms(bare_med)} + imports {ms(imp_med - bare_med)} + the rest "
            f"{ms(cli_med - imp_med)} (promotion, typer, JSON output, exit)"
        )
        rows.append(
            reference(
                "small promote via CLI, median latency (vs python -c pass)", cli_med, bare_med, ms
            )
        )
        rows.append(
            reference(
                "python -c 'import <file commands>', median (vs python -c pass)",
                imp_med,
                bare_med,
                ms,
            )
        )
        floor = imp_med + median(large.sha256)
        print(
            f"  => start-up + imports, then one sha256 pass, one after the other: {secs(floor)}, "
            f"{floor / median(large.repeated_cp):.2f}x cp+sync"
        )
        rows.append(
            reference(
                f"{args.size_mb} MB: the commands' imports, then one sha256 (reference)",
                floor,
                median(large.repeated_cp),
                secs,
            )
        )

        print(
            f"\n[4] {args.busy_count} small promotions per side while another process keeps "
            "writing (blocks of "
            f"{max(1, args.busy_count // 4)}, rotating; means)"
        )
        busy = bench_busy(work, args.busy_count, rng)
        b_files, b_fs = statistics.fmean(busy.files), statistics.fmean(busy.filesystem)
        b_hand = statistics.fmean(busy.hand)
        print(
            f"  the other writer wrote {busy.written // MB} MB in {secs(busy.seconds)} "
            f"({busy.written / MB / busy.seconds:.0f} MB/s, never synced)"
        )
        for label, times in (
            ('liftgate, flush = "files":', busy.files),
            ('liftgate, flush = "filesystem":', busy.filesystem),
            ("hand loop:", busy.hand),
        ):
            print(
                f"  {label:<31} mean {ms(statistics.fmean(times))}, median "
                f"{ms(median(times))}, max {ms(max(times))}"
            )
        rows.append(
            reference(
                'busy disk: API, flush = "files" vs hand loop (reference)', b_files, b_hand, ms
            )
        )
        rows.append(
            reference(
                'busy disk: API, flush = "filesystem" vs hand loop (reference)', b_fs, b_hand, ms
            )
        )
        rows.append(
            reference(
                'busy disk: flush = "filesystem" vs flush = "files" (reference)', b_fs, b_files, ms
            )
        )

        if args.profile:
            print(
                "\n[profile] where liftgate's time goes per small promotion (API, "
                "top 15 by cumulative time)"
            )
            profile_small(work, args.profile, rng)

        print("\nsummary (ratio = liftgate / baseline, same run)")
        print_summary(rows)
    finally:
        if args.keep:
            print(f"\nkept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
