#!/usr/bin/env python3
"""Benchmark liftgate's Odoo backup, restore and export against the tools a user would run.

Every figure is a ratio against a baseline measured in the same run, on the same private
PostgreSQL cluster, with the same client programs (the cluster's bin dir), in a
disk-backed work folder:

1. the first ``liftgate odoo backup prod`` (empty blob store) vs ``pg_dump -Fc`` of the same
   database followed by ``tar czf`` of its filestore (goal: ratio <= 0.6);
2. a second backup with the filestore unchanged vs the first backup (goal: <= 0.4);
3. ``liftgate odoo restore <id> --env staging`` into a fresh staging vs ``createdb`` +
   ``pg_restore -d`` (single job) of the ``-Fc`` dump + ``tar xzf`` (goal: <= 1.0);
4. ``liftgate odoo export <id> --format odoo-zip`` vs a plain ``pg_dump`` + ``zip -r`` of
   ``dump.sql`` and the filestore (goal: <= 1.0; skipped when the command is not there).

The database is an Odoo-shaped one (``liftgate.sandbox.odoo_sample``: word-list data that
compresses like real business data, not padding), about 750 MB at ``--scale 1``, with a
10,000-attachment (~300 MB) filestore. For the figures that miss their goal, the liftgate
side's time is split into phases from the run's own journal and evidence, and its dump
and filestore parts are re-timed alone.

Usage::

    python benchmarks/bench_odoo_backup.py [--scale 1.0] [--repeats 2] [--dir DIR] [--keep]

It is a measurement, not a test: it exits 0 whether the goals pass or fail, and non-zero
only when something errors.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime as dt
import gzip
import importlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from benchlib import (
    REPO,
    BenchError,
    Row,
    check_env_args,
    env_parser,
    median,
    print_header,
    print_summary,
    show,
    unescape_mount,
)
from liftgate.artifacts.blobs import BlobStore
from liftgate.artifacts.repository import ArtifactRepository
from liftgate.engine.project import Project
from liftgate.odoo.pgtools import PgTools
from liftgate.odoo.snapshot import SnapshotFacts, read_counts
from liftgate.sandbox.cluster import PgCluster, start_cluster

# the Odoo-shaped database and project helpers live with the tests (mypy checks them as the
# top-level package ``support``, because ``tests`` is one of its ``files`` roots)
sys.path.insert(0, str(REPO / "tests"))
from liftgate.sandbox.odoo_sample import PopulateResult, create_schema, populate
from support.odoo_project import OdooProject, config_text, make_role

MB = 1 << 20
MEMORY_FS = frozenset({"tmpfs", "ramfs", "devtmpfs", "hugetlbfs", "shm"})
# --scale 1: ~750 MB (pg_database_size: ~735 bytes of rows + indexes per partner with its
# message) and 10,000 attachments of up to ~35 KB (5% share a file: ~300 MB on disk)
PARTNERS = 1_000_000
ATTACHMENTS = 10_000
ATTACHMENT_BYTES = 35_000
GZIP_SAMPLE = 64 * MB
GZIP_RANGE = (3.0, 8.0)
GOALS = {"backup": 0.6, "second": 0.4, "restore": 1.0, "export": 1.0}


# --------------------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------------------


def secs(seconds: float) -> str:
    return f"{seconds:.2f} s"


def mbs(size: int) -> str:
    return f"{size / MB:,.1f} MB"


def tree_size(path: Path) -> tuple[int, int]:
    """(files, bytes) under ``path``."""
    files = total = 0
    for p in path.rglob("*"):
        if p.is_file() and not p.is_symlink():
            files += 1
            total += p.stat().st_size
    return files, total


def child_env() -> dict[str, str]:
    """This environment minus libpq variables that could redirect a command."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.setdefault("LC_ALL", "C.UTF-8")
    return env


def run_checked(argv: Sequence[str], cwd: Path) -> str:
    proc = subprocess.run(
        list(argv), cwd=cwd, env=child_env(), capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise BenchError(
            f"{show(argv)} exited {proc.returncode}\nstdout: {proc.stdout.strip()[-2000:]}\n"
            f"stderr: {proc.stderr.strip()[-2000:]}"
        )
    return proc.stdout


def timed_steps(steps: Sequence[tuple[Sequence[str], Path]]) -> list[float]:
    """``sync``, then run the commands one after the other; wall seconds of each."""
    os.sync()
    spent = []
    for argv, cwd in steps:
        started = time.perf_counter()
        run_checked(argv, cwd)
        spent.append(time.perf_counter() - started)
    return spent


def lg_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "liftgate", *args]


def lg_run(argv: Sequence[str], project: Path) -> tuple[float, dict[str, Any]]:
    """``sync``, then one timed liftgate CLI call; its wall seconds and its JSON output."""
    os.sync()
    started = time.perf_counter()
    stdout = run_checked(argv, project)
    spent = time.perf_counter() - started
    try:
        payload: Any = json.loads(stdout)
    except ValueError as exc:
        raise BenchError(f"{show(argv)} did not print JSON: {stdout[-2000:]!r}") from exc
    if not isinstance(payload, dict) or payload.get("status") != "OK":
        raise BenchError(f"{show(argv)} did not succeed: {stdout.strip()[-2000:]}")
    return spent, payload


def load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def parse_ts(text: str) -> dt.datetime:
    return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ")


# --------------------------------------------------------------------------------------
# where to work: a disk-backed folder, on the repository's filesystem when possible
# --------------------------------------------------------------------------------------


def fs_type(path: Path) -> str:
    """The filesystem type holding ``path`` (longest mount prefix in /proc/self/mounts)."""
    path = path.resolve()
    try:
        mounts = Path("/proc/self/mounts").read_text(encoding="utf-8")
    except OSError:
        return "unknown"
    best, kind = -1, "unknown"
    for line in mounts.splitlines():
        parts = line.split()
        if len(parts) < 3:
            continue
        point = Path(unescape_mount(parts[1]))
        if path.is_relative_to(point) and len(point.parts) > best:
            best, kind = len(point.parts), parts[2]
    return kind


def choose_base(requested: str | None) -> tuple[Path, str]:
    """A disk-backed folder to work in, and why it was picked."""
    tmp = Path(tempfile.gettempdir())
    print(f"  {tmp}: {fs_type(tmp)}")
    if requested is not None:
        base = Path(requested).resolve()
        base.mkdir(parents=True, exist_ok=True)
        kind = fs_type(base)
        warn = f" (WARNING: {kind} is memory-backed)" if kind in MEMORY_FS else ""
        return base, f"--dir, {kind}{warn}"
    repo_dev = REPO.stat().st_dev
    first: tuple[Path, str] | None = None
    for cand in (Path("/var/tmp"), REPO.parent, tmp):
        if not cand.is_dir() or not os.access(cand, os.W_OK | os.X_OK):
            continue
        kind = fs_type(cand)
        same = cand.stat().st_dev == repo_dev
        print(f"  {cand}: {kind}, {'same' if same else 'other'} device as the repository")
        if kind in MEMORY_FS:
            continue
        why = f"{kind}, disk-backed" + (", the repository's filesystem" if same else "")
        if same:
            return cand, why
        first = first or (cand, why)
    if first is None:
        raise BenchError("no disk-backed writable folder found; pass --dir DIR")
    return first


# --------------------------------------------------------------------------------------
# the cluster, the Odoo-shaped database, the liftgate project
# --------------------------------------------------------------------------------------
@dataclass
class Setup:
    work: Path
    cluster: PgCluster
    project: Path
    role: str
    prod_db: str
    staging_db: str
    prod_fs: Path
    staging_fs: Path
    populated: PopulateResult
    db_bytes: int = 0

    def conninfo(self, db: str) -> str:
        return role_conninfo(self.cluster, self.role, db)

    def tool(self, name: str) -> str:
        return str(self.cluster.bin_dir / name)

    def admin(self) -> psycopg.Connection[tuple[Any, ...]]:
        return psycopg.connect(self.cluster.dsn, autocommit=True)

    def drop_db(self, name: str) -> None:
        with self.admin() as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (name,),
            )
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))

    @property
    def artifacts(self) -> Path:
        return self.project / ".liftgate" / "artifacts"


def role_conninfo(cluster: PgCluster, role: str, db: str) -> str:
    """libpq conninfo for ``db`` as the env's own (non-superuser) role."""
    return make_conninfo(host=str(cluster.socket_dir), port=str(cluster.port), user=role, dbname=db)


def build(work: Path, scale: float) -> Setup:
    started = time.perf_counter()
    cluster = start_cluster(work / "pg")
    try:
        role = make_role(cluster)
        prod_db, staging_db = "prod_bench", "prod_bench_staging"
        project = work / "project"
        prod_fs = project / "data" / "filestore" / prod_db
        with psycopg.connect(cluster.dsn, autocommit=True) as admin:
            admin.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(prod_db), sql.Identifier(role)
                )
            )
        partners = max(1000, round(PARTNERS * scale))
        attachments = max(20, round(ATTACHMENTS * scale))
        print(f"  cluster: {cluster.data_dir} ({fs_type(cluster.data_dir)}), socket")
        print(f"           {cluster.socket_dir}, binaries {cluster.bin_dir}, superuser ")
        print(
            f"           {cluster.superuser}; liftgate's role {role} (LOGIN CREATEDB, no superuser)"
        )
        print(
            f"  populate(partners={partners}, attachments={attachments}, "
            f"attachment_bytes={ATTACHMENT_BYTES}) into {prod_db} ..."
        )
        prod = role_conninfo(cluster, role, prod_db)
        create_schema(prod)
        populated = populate(
            prod,
            prod_fs,
            partners=partners,
            attachments=attachments,
            attachment_bytes=ATTACHMENT_BYTES,
        )
        vacuum_started = time.perf_counter()
        with psycopg.connect(cluster.dsn, autocommit=True) as admin:
            with psycopg.connect(cluster.conninfo(prod_db), autocommit=True) as conn:
                conn.execute("VACUUM (FREEZE, ANALYZE)")
            admin.execute("CHECKPOINT")
            row = admin.execute("SELECT pg_database_size(%s)", (prod_db,)).fetchone()
        db_bytes = int(row[0]) if row else 0
        vacuum_s = time.perf_counter() - vacuum_started
        odoo = OdooProject(
            root=project,
            cluster=cluster,
            role=role,
            prod_db=prod_db,
            staging_db=staging_db,
            prod_filestore=prod_fs,
            staging_filestore=project / "data" / "filestore" / staging_db,
            populated=populated,
        )
        (project / "liftgate.toml").write_text(config_text(odoo), encoding="utf-8")
        os.sync()
    except BaseException:
        cluster.cleanup()
        raise
    setup = Setup(
        work=work,
        cluster=cluster,
        project=project,
        role=role,
        prod_db=prod_db,
        staging_db=staging_db,
        prod_fs=prod_fs,
        staging_fs=odoo.staging_filestore,
        populated=populated,
        db_bytes=db_bytes,
    )
    pop = populated
    files, fs_bytes = tree_size(prod_fs)
    print(
        f"  built in {secs(time.perf_counter() - started)} (populate {secs(pop.elapsed_s)}, "
        f"VACUUM (FREEZE, ANALYZE) + CHECKPOINT {secs(vacuum_s)})"
    )
    print(
        f"  database {prod_db}: pg_database_size {mbs(setup.db_bytes)}; {pop.partners:,} "
        f"partners, {pop.messages:,} messages, {pop.attachments:,} attachments"
    )
    print(
        f"  filestore {prod_fs}: {files:,} files, {mbs(fs_bytes)} "
        f"({pop.duplicate_attachments} attachments share a file)"
    )
    return setup


def gzip_sample(s: Setup) -> float:
    """gzip -6 ratio of the first GZIP_SAMPLE bytes of a plain pg_dump of prod."""
    argv = [s.tool("pg_dump"), f"--dbname={s.conninfo(s.prod_db)}"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, env=child_env())
    assert proc.stdout is not None
    chunks: list[bytes] = []
    got = 0
    while got < GZIP_SAMPLE:
        chunk = proc.stdout.read(min(8 * MB, GZIP_SAMPLE - got))
        if not chunk:
            break
        chunks.append(chunk)
        got += len(chunk)
    if proc.poll() is None:
        proc.kill()  # the sample is all we need
    proc.stdout.close()
    proc.wait()
    data = b"".join(chunks)
    packed = len(gzip.compress(data, compresslevel=6))
    ratio = len(data) / packed
    low, high = GZIP_RANGE
    verdict = "within" if low <= ratio <= high else "OUTSIDE"
    print(f"  plain dump sample: {show(argv)} | first {mbs(len(data))}")
    print(
        f"  Python gzip.compress(level 6) of it: {mbs(packed)}, ratio {ratio:.2f}:1 "
        f"({verdict} {low:g}:1 .. {high:g}:1)"
    )
    return ratio


# --------------------------------------------------------------------------------------
# phases of a liftgate run, from its journal
# --------------------------------------------------------------------------------------
@dataclass
class Phases:
    run_s: float
    steps: list[tuple[str, float]]
    detail: dict[str, dict[str, Any]]


def run_phases(project_dir: Path, run_id: str) -> Phases:
    project = Project.open(cwd=project_dir)
    try:
        record = project.store.get_run(run_id)
        steps = project.store.steps(run_id)
    finally:
        project.close()
    if record is None or record.finished_at is None:
        raise BenchError(f"run {run_id} is not finished in the ops store")
    out: list[tuple[str, float]] = []
    detail: dict[str, dict[str, Any]] = {}
    opened: dict[str, dt.datetime] = {}
    for step in steps:
        if step.state == "started":
            opened[step.name] = parse_ts(step.at)
        elif step.state == "done" and step.name in opened:
            out.append((step.name, (parse_ts(step.at) - opened.pop(step.name)).total_seconds()))
            detail[step.name] = step.detail
    run_s = (parse_ts(record.finished_at) - parse_ts(record.created_at)).total_seconds()
    return Phases(run_s, out, detail)


def print_phases(label: str, wall: float, phases: Phases, startup: float) -> None:
    print(f"  {label}: CLI wall {secs(wall)}")
    outside = wall - phases.run_s
    print(
        f"    {'outside the run (start-up, imports, config, lock, recover, pre-checks, exit)':<78}"
        f" {secs(outside):>9}  {outside / wall:6.1%}"
    )
    print(f"      of which interpreter start-up + import liftgate.cli.app: {secs(startup)}")
    covered = 0.0
    for name, spent in phases.steps:
        covered += spent
        print(f"    {'step ' + name:<78} {secs(spent):>9}  {spent / wall:6.1%}")
    rest = phases.run_s - covered
    label = "in the run, outside every journaled step (Run.start, finish + seal, and any"
    print(f"    {label:<78} {secs(rest):>9}  {rest / wall:6.1%}")
    print("      work the code does between two steps)")


def startup_time(project: Path) -> float:
    argv = [sys.executable, "-c", "import liftgate.cli.app"]
    run_checked(argv, project)
    spent = []
    for _ in range(3):
        started = time.perf_counter()
        run_checked(argv, project)
        spent.append(time.perf_counter() - started)
    return median(spent)


# --------------------------------------------------------------------------------------
# 1 and 2. backups
# --------------------------------------------------------------------------------------
@dataclass
class BackupRuns:
    first: list[float] = field(default_factory=list)
    first_reported: list[float] = field(default_factory=list)
    second: list[float] = field(default_factory=list)
    second_reported: list[float] = field(default_factory=list)
    baseline: list[float] = field(default_factory=list)
    baseline_parts: list[tuple[float, float]] = field(default_factory=list)
    baseline_sync: list[float] = field(default_factory=list)
    artifact: str = ""
    first_run: tuple[float, str, str] = (0.0, "", "")  # wall, run id, evidence path
    second_run: tuple[float, str, str] = (0.0, "", "")
    changed: float = 0.0
    dump_fc: Path = Path()
    tarball: Path = Path()


def backup_seconds(payload: dict[str, Any]) -> float:
    evidence = Path(str(payload.get("evidence_path")))
    data: Any = json.loads((evidence / "backup.json").read_text(encoding="utf-8"))
    return float(data["seconds"])


def bench_backups(s: Setup, repeats: int) -> BackupRuns:
    res = BackupRuns()
    base = s.work / "baseline" / "backup"
    base.mkdir(parents=True)
    res.dump_fc, res.tarball = base / "prod.dump", base / "filestore.tar.gz"
    argv = lg_argv("odoo", "backup", "prod", "--json")
    dump = [s.tool("pg_dump"), "-Fc", "-f", str(res.dump_fc), "-d", s.conninfo(s.prod_db)]
    tar = ["tar", "czf", str(res.tarball), "-C", str(s.prod_fs.parent), s.prod_fs.name]
    print(f"  liftgate: {show(argv)}   (cwd {s.project})")
    print(f"            before each run {s.artifacts} is removed: empty blob store, first backup")
    print(f"  baseline: {show(dump)}")
    print(f"            then {show(tar)}   (sequentially, cwd {base})")
    print("  sync before every timed run; runs alternate which side goes first")

    def liftgate_first(i: int) -> None:
        shutil.rmtree(s.artifacts, ignore_errors=True)
        wall, out = lg_run(argv, s.project)
        reported = backup_seconds(out)
        res.first.append(wall)
        res.first_reported.append(reported)
        res.artifact = str(out["artifact_id"])
        res.first_run = (wall, str(out["run_id"]), str(out["evidence_path"]))
        print(
            f"  run {i} liftgate first backup: {secs(wall)} "
            f"(backup.json seconds {reported:.2f}; {out['artifact_id']})"
        )

    def baseline(i: int) -> None:
        for p in (res.dump_fc, res.tarball):
            p.unlink(missing_ok=True)
        parts = timed_steps([(dump, base), (tar, base)])
        started = time.perf_counter()
        os.sync()
        flush = time.perf_counter() - started
        res.baseline.append(sum(parts))
        res.baseline_parts.append((parts[0], parts[1]))
        res.baseline_sync.append(flush)
        print(
            f"  run {i} baseline: {secs(sum(parts))} (pg_dump -Fc {secs(parts[0])} + tar czf "
            f"{secs(parts[1])}; a sync right after took {secs(flush)}, not counted)"
        )

    for i in range(1, repeats + 1):
        for side in (liftgate_first, baseline) if i % 2 else (baseline, liftgate_first):
            side(i)
    art_files, art_bytes = tree_size(s.artifacts / res.artifact)
    _, blob_bytes = tree_size(s.artifacts / "blobs")
    print(
        f"  sizes: artifact {mbs(art_bytes)} in {art_files} files + blob store "
        f"{mbs(blob_bytes)}; baseline dump {mbs(res.dump_fc.stat().st_size)} + tarball "
        f"{mbs(res.tarball.stat().st_size)}"
    )
    ratio = median(res.first) / median(res.baseline)
    print(
        f"  [1] liftgate median {secs(median(res.first))}, baseline median "
        f"{secs(median(res.baseline))}: ratio {ratio:.2f} (goal <= {GOALS['backup']})"
    )

    print(
        f"\n[2] second backup, filestore unchanged, vs the first backup ({repeats} runs; medians)"
    )
    print(f"  liftgate: {show(argv)}   (blob store kept: every blob already there)")
    for i in range(1, repeats + 1):
        wall, out = lg_run(argv, s.project)
        reported = backup_seconds(out)
        res.second.append(wall)
        res.second_reported.append(reported)
        res.second_run = (wall, str(out["run_id"]), str(out["evidence_path"]))
        print(
            f"  run {i} liftgate second backup: {secs(wall)} (backup.json seconds {reported:.2f}; "
            f"database unchanged, dump linked from: {reused_from(out)})"
        )
    ratio = median(res.second) / median(res.first)
    print(
        f"  [2] second median {secs(median(res.second))}, first median "
        f"{secs(median(res.first))}: ratio {ratio:.2f} (goal <= {GOALS['second']})"
    )
    # for reference: one row changed, so the database must be dumped again
    with psycopg.connect(s.conninfo(s.prod_db), autocommit=True) as conn:
        conn.execute(
            "UPDATE res_partner SET name = name || '.' WHERE id = (SELECT min(id) FROM res_partner)"
        )
    wall, out = lg_run(argv, s.project)
    res.changed = wall
    print(
        f"  reference: second backup after one row changed: {secs(wall)} "
        f"(dump linked from: {reused_from(out)}), {wall / median(res.first):.2f} of the first"
    )
    return res


def reused_from(payload: dict[str, Any]) -> str | None:
    evidence = Path(str(payload.get("evidence_path")))
    data: Any = json.loads((evidence / "backup.json").read_text(encoding="utf-8"))
    found = data.get("reused_dump_of")
    return str(found) if found else None


# --------------------------------------------------------------------------------------
# 3. restore
# --------------------------------------------------------------------------------------
@dataclass
class RestoreRuns:
    liftgate: list[float] = field(default_factory=list)
    baseline: list[float] = field(default_factory=list)
    last: tuple[float, str] = (0.0, "")


def clear_staging(s: Setup) -> None:
    with s.admin() as conn:
        rows = conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE %s",
            (s.staging_db + "%",),
        ).fetchall()
    names = {str(r[0]) for r in rows} | {s.staging_db}
    for name in sorted(names):
        s.drop_db(name)
    parent = s.staging_fs.parent
    for p in parent.iterdir():
        if p.name.startswith((s.staging_fs.name, f".{s.staging_fs.name}")):
            shutil.rmtree(p)


def bench_restore(s: Setup, backups: BackupRuns, repeats: int) -> RestoreRuns:
    res = RestoreRuns()
    argv = lg_argv("odoo", "restore", backups.artifact, "--env", "staging", "--json")
    bl_db = f"{s.prod_db}_baseline"
    dest = s.work / "baseline" / "restore-fs"
    createdb = [
        s.tool("createdb"),
        "-h",
        str(s.cluster.socket_dir),
        "-p",
        str(s.cluster.port),
        "-U",
        s.role,
        bl_db,
    ]
    restore = [s.tool("pg_restore"), "-d", s.conninfo(bl_db), str(backups.dump_fc)]
    untar = ["tar", "xzf", str(backups.tarball), "-C", str(dest)]
    print(f"  liftgate: {show(argv)}   (cwd {s.project})")
    print(f"            staging ({s.staging_db}) absent before each run: dropped in between")
    print(f"  baseline: {show(createdb)}")
    print(f"            then {show(restore)}")
    print(f"            then {show(untar)}   (the empty {dest.name} made beforehand)")

    def liftgate(i: int) -> None:
        clear_staging(s)
        wall, out = lg_run(argv, s.project)
        res.liftgate.append(wall)
        res.last = (wall, str(out["run_id"]))
        print(f"  run {i} liftgate restore: {secs(wall)} ({out['message']})")

    def baseline(i: int) -> None:
        s.drop_db(bl_db)
        shutil.rmtree(dest, ignore_errors=True)
        dest.mkdir(parents=True)
        parts = timed_steps([(createdb, s.work), (restore, s.work), (untar, s.work)])
        res.baseline.append(sum(parts))
        print(
            f"  run {i} baseline: {secs(sum(parts))} (createdb {secs(parts[0])} + pg_restore "
            f"{secs(parts[1])} + tar xzf {secs(parts[2])})"
        )

    for i in range(1, repeats + 1):
        for side in (liftgate, baseline) if i % 2 else (baseline, liftgate):
            side(i)
    ratio = median(res.liftgate) / median(res.baseline)
    print(
        f"  [3] liftgate median {secs(median(res.liftgate))}, baseline median "
        f"{secs(median(res.baseline))}: ratio {ratio:.2f} (goal <= {GOALS['restore']})"
    )
    s.drop_db(bl_db)
    shutil.rmtree(dest, ignore_errors=True)
    return res


# --------------------------------------------------------------------------------------
# 4. export
# --------------------------------------------------------------------------------------
@dataclass
class ExportRuns:
    liftgate: list[float] = field(default_factory=list)
    baseline: list[float] = field(default_factory=list)
    last: tuple[float, str | None] = (0.0, None)


def export_available(project: Path) -> bool:
    proc = subprocess.run(
        lg_argv("odoo", "export", "--help"),
        cwd=project,
        env=child_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    return proc.returncode == 0 and "--format" in proc.stdout


def bench_export(s: Setup, artifact: str, repeats: int) -> ExportRuns:
    res = ExportRuns()
    out_dir = s.project / "exports"  # liftgate writes only inside the project's roots
    out_dir.mkdir()
    out_zip = out_dir / "prod.zip"
    argv = lg_argv("odoo", "export", artifact, "--format", "odoo-zip", "-o", str(out_zip), "--json")
    base = s.work / "baseline" / "export"
    base.mkdir(parents=True)
    (base / "filestore").symlink_to(s.prod_fs, target_is_directory=True)
    dump = [s.tool("pg_dump"), "--no-owner", "-f", "dump.sql", "-d", s.conninfo(s.prod_db)]
    zip_bin = shutil.which("zip")
    if zip_bin is None:
        raise BenchError("zip is needed for the export baseline (apt-get install zip)")
    zipped = [zip_bin, "-r", "-q", "prod.zip", "dump.sql", "filestore"]
    print(f"  liftgate: {show(argv)}   (cwd {s.project})")
    print(f"  baseline: {show(dump)}   (cwd {base}; --no-owner as Odoo's own backup)")
    print(f"            then {show(zipped)}   (deflate, level 6; filestore is a symlink")
    print(f"            to {s.prod_fs}, which zip follows)")

    def liftgate(i: int) -> None:
        out_zip.unlink(missing_ok=True)
        wall, out = lg_run(argv, s.project)
        if not out_zip.is_file():
            raise BenchError(f"{show(argv)} said OK but wrote no {out_zip}")
        res.liftgate.append(wall)
        run_id = out.get("run_id")
        res.last = (wall, str(run_id) if run_id else None)
        print(f"  run {i} liftgate export: {secs(wall)} ({mbs(out_zip.stat().st_size)})")

    def baseline(i: int) -> None:
        for name in ("dump.sql", "prod.zip"):
            (base / name).unlink(missing_ok=True)
        parts = timed_steps([(dump, base), (zipped, base)])
        res.baseline.append(sum(parts))
        print(
            f"  run {i} baseline: {secs(sum(parts))} (pg_dump {secs(parts[0])} + zip -r "
            f"{secs(parts[1])}; {mbs((base / 'prod.zip').stat().st_size)})"
        )

    for i in range(1, repeats + 1):
        for side in (liftgate, baseline) if i % 2 else (baseline, liftgate):
            side(i)
    out_zip.unlink()
    ratio = median(res.liftgate) / median(res.baseline)
    print(
        f"  [4] liftgate median {secs(median(res.liftgate))}, baseline median "
        f"{secs(median(res.baseline))}: ratio {ratio:.2f} (goal <= {GOALS['export']})"
    )
    shutil.rmtree(base, ignore_errors=True)
    return res


# --------------------------------------------------------------------------------------
# where the liftgate side's time goes (figures that miss their goal)
# --------------------------------------------------------------------------------------
def dump_experiment(
    s: Setup, backup_evidence: str, *, compress: str | None = None, counts: bool = False
) -> tuple[list[str], float, float]:
    """Run liftgate's exact pg_dump argv (from backup.json) on a snapshot held open, as
    backup does; with ``counts``, liftgate's ``read_counts`` runs in that snapshot while
    pg_dump works (as in the backup's dump step). Returns (argv, wall s, read_counts s)."""
    data: Any = json.loads((Path(backup_evidence) / "backup.json").read_text(encoding="utf-8"))
    out = s.work / "profile" / "db"
    out.parent.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(out, ignore_errors=True)
    with psycopg.connect(s.conninfo(s.prod_db)) as conn:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        row = conn.execute("SELECT pg_export_snapshot()").fetchone()
        snapshot = str(row[0]) if row else ""
        argv = []
        for arg in data["pg_dump_argv"]:
            if arg.startswith("--snapshot="):
                arg = f"--snapshot={snapshot}"
            elif arg.startswith("--file="):
                arg = f"--file={out}"
            elif arg.startswith("--compress=") and compress is not None:
                arg = f"--compress={compress}"
            argv.append(str(arg))
        os.sync()
        started = time.perf_counter()
        proc = subprocess.Popen(argv, env=child_env(), stdout=subprocess.DEVNULL)
        counts_s = 0.0
        if counts:
            read_counts(conn, SnapshotFacts())
            counts_s = time.perf_counter() - started
        code = proc.wait()
        spent = time.perf_counter() - started
    shutil.rmtree(out, ignore_errors=True)
    if code != 0:
        raise BenchError(f"{show(argv)} exited {code}")
    return argv, spent, counts_s


def counts_alone(s: Setup) -> float:
    """liftgate's ``read_counts`` (exact count(*) of every table) in a snapshot, alone."""
    with psycopg.connect(s.conninfo(s.prod_db)) as conn:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        conn.execute("SELECT pg_export_snapshot()")
        started = time.perf_counter()
        read_counts(conn, SnapshotFacts())
        return time.perf_counter() - started


def blobs_alone(s: Setup, fresh: bool) -> float:
    """liftgate's blob store, called as backup does (4 threads), over the prod filestore."""
    with psycopg.connect(s.conninfo(s.prod_db)) as conn:
        rows = conn.execute(
            "SELECT DISTINCT store_fname FROM ir_attachment WHERE store_fname IS NOT NULL"
        ).fetchall()
    fnames = sorted(str(r[0]) for r in rows)
    store = BlobStore(s.work / "profile" / "blobs") if fresh else BlobStore(s.artifacts / "blobs")
    if fresh:
        shutil.rmtree(store.root, ignore_errors=True)

    def one(fname: str) -> None:
        sha1 = fname.split("/", 1)[1]
        if not store.has(sha1):
            store.put(s.prod_fs / fname, sha1)
        store.size(sha1)

    os.sync()
    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(one, fnames))
    spent = time.perf_counter() - started
    if fresh:
        shutil.rmtree(store.root, ignore_errors=True)
    return spent


def profile_backup(s: Setup, label: str, run: tuple[float, str, str], fresh: bool,
                   startup: float) -> None:  # fmt: skip
    wall, run_id, evidence = run
    phases = run_phases(s.project, run_id)
    print_phases(label, wall, phases, startup)
    dump_detail = phases.detail.get("dump", {})
    print(
        f"    (dump step detail: blobs_new {dump_detail.get('blobs_new')}, blobs_reused "
        f"{dump_detail.get('blobs_reused')})"
    )
    if not dump_detail.get("argv"):
        print("    no pg_dump ran: the database was unchanged and the previous dump was linked")
        return
    argv, dump_s, _ = dump_experiment(s, evidence)
    count_s = counts_alone(s)
    _, both_s, both_counts = dump_experiment(s, evidence, counts=True)
    blob_s = blobs_alone(s, fresh)
    print("    the dump step runs pg_dump beside read_counts + the blob store; each re-timed")
    print("    outside liftgate (sync before each):")
    print(f"      pg_dump alone, liftgate's argv: {secs(dump_s)}")
    print(f"        {show(argv)}")
    print(
        f"      read_counts alone (exact count(*) of every table, in a snapshot): {secs(count_s)}"
    )
    print(
        f"      pg_dump with read_counts beside it, as in the dump step: {secs(both_s)} "
        f"(read_counts done after {secs(both_counts)})"
    )
    what = "into an empty store (put: copy + sha1 + fsync)" if fresh else "all present (has)"
    print(f"      blob store alone, 4 threads, {what}: {secs(blob_s)}")
    for level in ("1", "0"):
        _, other_s, _ = dump_experiment(s, evidence, compress=level)
        print(f"      reference: pg_dump alone with --compress={level} instead: {secs(other_s)}")


def profile_restore(s: Setup, artifact: str, run: tuple[float, str], startup: float) -> None:
    wall, run_id = run
    phases = run_phases(s.project, run_id)
    print_phases("last liftgate restore", wall, phases, startup)
    argv = phases.detail.get("pg_restore", {}).get("argv")
    if argv:
        print(f"    (pg_restore argv: {show([str(a) for a in argv])})")
    repo = ArtifactRepository(s.artifacts)
    os.sync()
    started = time.perf_counter()
    problems = repo.verify(artifact, read_data=True)
    verify_s = time.perf_counter() - started
    print(
        f"    outside the run, ArtifactRepository.verify(read_data=True) alone: {secs(verify_s)} "
        f"({len(problems)} problems)"
    )
    # restore runs a database-wide ANALYZE between its neutralize and filestore steps
    with psycopg.connect(s.conninfo(s.staging_db), autocommit=True) as conn:
        os.sync()
        started = time.perf_counter()
        conn.execute("ANALYZE")
        analyze_s = time.perf_counter() - started
    print(
        f"    between steps neutralize and filestore, ANALYZE of the restored {s.staging_db} "
        f"alone: {secs(analyze_s)}"
    )


def profile_export(s: Setup, artifact: str, wall: float, startup: float) -> None:
    """An export records no run: time it in-process, then its two halves alone, each with
    ``odoozip``'s own code (its private ``_stream_dump`` and ``_copy_blob``)."""
    odoozip: Any = importlib.import_module("liftgate.odoo.odoozip")
    print(f"  last liftgate export: CLI wall {secs(wall)} (an export records no run: no journal)")
    print(f"    interpreter start-up + import liftgate.cli.app: {secs(startup)}")
    if not all(hasattr(odoozip, n) for n in ("export_zip", "_stream_dump", "_copy_blob")):
        print("    (liftgate.odoo.odoozip has no export_zip/_stream_dump/_copy_blob: no split)")
        return
    level = int(getattr(odoozip, "COMPRESSLEVEL", 3))
    repo = ArtifactRepository(s.artifacts)
    manifest = repo.load(artifact)
    folder = repo.path(artifact)
    major = int(manifest.db_dump.pg_server_version.split(".")[0])
    argv = [str(a) for a in odoozip.pg_restore_sql_argv(PgTools.for_major(major), folder / "db")]
    entries = repo.read_index(artifact)
    out = s.project / "exports" / "profile.zip"
    project = Project.open(cwd=s.project)
    try:
        out.unlink(missing_ok=True)
        os.sync()
        started = time.perf_counter()
        odoozip.export_zip(project, artifact, str(out))
        whole = time.perf_counter() - started

        def halves(dump: bool) -> float:
            out.unlink(missing_ok=True)
            os.sync()
            began = time.perf_counter()
            with (
                open(out, "wb") as fh,
                zipfile.ZipFile(
                    fh, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=level
                ) as zf,
            ):
                if dump:
                    odoozip._stream_dump(zf, argv, project, out.parent)
                else:
                    for entry in entries:
                        odoozip._copy_blob(zf, repo, entry)
            return time.perf_counter() - began

        dump_s = halves(True)
        blobs_s = halves(False)
    finally:
        out.unlink(missing_ok=True)
        project.close()
    os.sync()
    started = time.perf_counter()
    run_checked(["--file=/dev/null" if a == "--file=-" else a for a in argv], s.work)
    sql_s = time.perf_counter() - started
    print(f"    odoozip.export_zip in this process (no CLI): {secs(whole)}")
    print(f"      dump.sql half alone (_stream_dump: pg_restore | deflate {level}): {secs(dump_s)}")
    print(f"        {show(argv)}")
    print(f"        of which pg_restore alone into /dev/null: {secs(sql_s)}")
    print(f"      filestore half alone (_copy_blob x {len(entries)}: sha1 + deflate {level}): "
          f"{secs(blobs_s)}")  # fmt: skip
    rest = whole - dump_s - blobs_s
    print(
        f"      the rest (verify, sha256 of the dump, manifest.json, fsync, rename): {secs(rest)}"
    )
    print(f"    CLI wall minus the in-process export: {secs(wall - whole)}")


# --------------------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------------------
def row(figure: str, lg: float, bl: float, goal: float) -> Row:
    ratio = lg / bl
    return Row(
        figure,
        secs(lg),
        secs(bl),
        ratio,
        f"<= {goal}",
        "PASS" if ratio <= goal else "FAIL",
    )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = env_parser(
        __doc__, quick="0.1", repeats_help="timed runs per side (default 2; medians)"
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="split the liftgate side's time for every figure, not only those missing the goal",
    )
    args = parser.parse_args(argv)
    check_env_args(parser, args)
    return args


def env_work_folder(args: argparse.Namespace, prefix: str, mb_per_scale: int) -> Path:
    """Print the run's size options and the load, then make the work folder (disk-backed,
    with room for ``mb_per_scale`` MB per unit of ``--scale`` plus 1 GB) and say where."""
    print(f"  --scale {args.scale:g}, --repeats {args.repeats}")
    print(f"  load average {load()} (other work on this machine shares its CPUs and disk)")
    print("work folder:")
    base, why = choose_base(args.dir)
    need = int(args.scale * mb_per_scale * MB) + 1024 * MB
    free = shutil.disk_usage(base).free
    if free < need:
        raise BenchError(f"{base} has {free // MB} MB free; this run needs ~{need // MB} MB")
    work = Path(tempfile.mkdtemp(prefix=prefix, dir=base))
    work.chmod(0o755)  # the server (OS user postgres when root) keeps its data dir in here
    print(f"  using {work} ({why})")
    return work


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    print_header("liftgate Odoo backup / restore / export benchmark")
    work = env_work_folder(args, "lg-bench-odoo-", 9000)

    rows: list[Row] = []
    setup: Setup | None = None
    try:
        print("\n[build] private cluster, Odoo-shaped database, filestore, liftgate project")
        setup = build(work, args.scale)
        s = setup
        gzip_sample(s)
        with s.admin() as conn:
            version = conn.execute("SHOW server_version").fetchone()
            fsync = conn.execute("SHOW fsync").fetchone()
        print(f"  PostgreSQL {version[0] if version else '?'}, fsync {fsync[0] if fsync else '?'}")
        startup = startup_time(s.project)

        print(
            f"\n[1] first backup vs pg_dump -Fc + tar czf ({args.repeats} runs per side; medians)"
        )
        backups = bench_backups(s, args.repeats)
        rows.append(
            row(
                "1 first backup vs pg_dump -Fc + tar czf",
                median(backups.first),
                median(backups.baseline),
                GOALS["backup"],
            )
        )
        rows.append(
            row(
                "2 second backup (filestore unchanged) vs first",
                median(backups.second),
                median(backups.first),
                GOALS["second"],
            )
        )
        rows.append(
            Row(
                "2' second backup after one row changed vs first",
                secs(backups.changed),
                secs(median(backups.first)),
                backups.changed / median(backups.first),
                "none set",
                "INFO",
            )
        )

        print(
            f"\n[3] restore into a fresh staging vs createdb + pg_restore + tar xzf "
            f"({args.repeats} runs per side; medians)"
        )
        restores = bench_restore(s, backups, args.repeats)
        rows.append(
            row(
                "3 restore vs createdb + pg_restore + tar xzf",
                median(restores.liftgate),
                median(restores.baseline),
                GOALS["restore"],
            )
        )

        print(f"\n[4] odoo-zip export vs pg_dump + zip -r ({args.repeats} runs per side; medians)")
        exports: ExportRuns | None = None
        if export_available(s.project):
            exports = bench_export(s, backups.artifact, args.repeats)
            rows.append(
                row(
                    "4 odoo-zip export vs pg_dump + zip -r",
                    median(exports.liftgate),
                    median(exports.baseline),
                    GOALS["export"],
                )
            )
        else:
            print("  export: not available in this checkout")
            rows.append(
                Row("4 odoo-zip export vs pg_dump + zip -r", "-", "-", None, "<= 1.0", "SKIP")
            )

        failing = {r.figure[0] for r in rows if r.verdict == "FAIL" or args.profile}
        if failing:
            which = "every figure (--profile)" if args.profile else "the figures missing their goal"
            print(
                f"\n[profile] where the liftgate side's time goes, for {which} (phases from the "
                "run's journal in the ops store; 'alone' = re-run outside liftgate, same inputs)"
            )
        if "1" in failing:
            profile_backup(s, "last first backup [1]", backups.first_run, True, startup)
        if "2" in failing:
            profile_backup(s, "last second backup [2]", backups.second_run, False, startup)
        if "3" in failing:
            profile_restore(s, backups.artifact, restores.last, startup)
        if "4" in failing and exports is not None:
            wall, run_id = exports.last
            if run_id is None:
                profile_export(s, backups.artifact, wall, startup)
            else:
                print_phases("last liftgate export", wall, run_phases(s.project, run_id), startup)

        print(f"\nload average at the end: {load()}")
        print("\nsummary (ratio = liftgate / baseline, medians of the same run)")
        print_summary(rows)
    finally:
        if setup is not None:
            setup.cluster.cleanup()
        if args.keep:
            print(f"\nkept {work} (the cluster is stopped; its data dir is {work / 'pg'})")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
