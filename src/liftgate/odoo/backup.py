"""``liftgate odoo backup ENV``: a consistent snapshot of database and filestore together.

Order, and why:

1. A REPEATABLE READ, READ ONLY transaction exports its snapshot (``pg_export_snapshot``)
   and stays open until the dump is done.
2. In that snapshot liftgate reads the attachments' ``store_fname`` list, installed
   modules, ``database.uuid``, exact row counts and sequence values — the same data
   ``pg_dump --snapshot`` dumps, so the backup holds exactly the files the dumped database
   references, even while users keep writing.
3. ``pg_dump --format=directory --jobs=N --snapshot=...`` runs while the referenced files
   are stored in the shared content-addressed blob store (a blob already there is not
   copied again; each new one is checked against its sha1 name).
4. The index and the manifest are written into a temp folder, which is renamed into place
   (the commit point): an artifact is either complete or absent.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import os
import subprocess
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from liftgate import __version__
from liftgate.artifacts.contract import (
    FORMAT,
    ArtifactManifest,
    DbDump,
    DbState,
    DumpFile,
    FileIndex,
    FilestoreInfo,
    OdooInfo,
    SourceEnv,
    ToolInfo,
)
from liftgate.artifacts.repository import ArtifactRepository, dump_digest, index_digest
from liftgate.engine.digest import sha256_file
from liftgate.engine.fsops import fsync_tree
from liftgate.engine.guardrails import Guardrails
from liftgate.engine.project import Project
from liftgate.engine.recovery import lock_name, recover
from liftgate.engine.runs import Run, new_run_id
from liftgate.errors import IntegrityError, LiftgateError, OperationError
from liftgate.odoo.dumpreuse import link_previous_dump, reusable_dump, snapshot_state
from liftgate.odoo.env import OdooEnv, resolve_env
from liftgate.odoo.pgtools import PgTools, first_error, server_info
from liftgate.odoo.snapshot import SnapshotFacts, read_counts, read_odoo_facts, read_sequences
from liftgate.store.base import utcnow

__all__ = ["SKILL", "BackupResult", "backup", "env_lock"]

SKILL = "backup-odoo-environment"

Progress = Callable[[str, int, int], None]


def env_lock(name: str) -> str:
    return f"odoo-env:{name}"


@dataclass
class BackupResult:
    status: str
    message: str
    run_id: str
    artifact_id: str | None = None
    artifact_path: str | None = None
    evidence_path: str | None = None
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "action": "odoo backup",
            "run_id": self.run_id,
            "artifact_id": self.artifact_id,
            "artifact_path": self.artifact_path,
            "evidence_path": self.evidence_path,
            "message": self.message,
            "warnings": self.warnings,
        }


def _dump_argv(tools: PgTools, env: OdooEnv, snapshot: str, out: Path, jobs: int) -> list[str]:
    return [
        tools.path("pg_dump"),
        f"--dbname={env.conninfo()}",
        "--format=directory",
        f"--jobs={jobs}",
        f"--snapshot={snapshot}",
        "--no-owner",
        "--no-privileges",
        "--compress=3",
        f"--file={out}",
    ]


def _store_blobs(
    repo: ArtifactRepository, env: OdooEnv, fnames: list[str], progress: Progress | None
) -> tuple[list[tuple[str, str, int]], list[str], list[str], int]:
    """Store every referenced file; returns (index entries, missing, corrupt, newly stored)."""
    entries: list[tuple[str, str, int]] = []
    missing: list[str] = []
    corrupt: list[str] = []
    stored = 0

    def one(fname: str) -> tuple[str, str, int | None, bool]:
        sha1 = fname.split("/", 1)[1]
        src = env.filestore / fname
        if repo.blobs.has(sha1):
            return fname, "present", repo.blobs.size(sha1), False
        try:
            new = repo.blobs.put(src, sha1)
        except FileNotFoundError:
            return fname, "missing", None, False
        except IntegrityError:
            return fname, "corrupt", None, False
        return fname, "present", repo.blobs.size(sha1), new

    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        for done, (fname, state, size, new) in enumerate(pool.map(one, fnames), 1):
            if state == "missing":
                missing.append(fname)
            elif state == "corrupt":
                corrupt.append(fname)
            else:
                entries.append((fname, fname.split("/", 1)[1], int(size or 0)))
                stored += int(new)
            if progress is not None and (done % 200 == 0 or done == len(fnames)):
                progress("filestore", done, len(fnames))
    return entries, missing, corrupt, stored


def _dump_files(folder: Path) -> list[DumpFile]:
    files = []
    for path in sorted(folder.iterdir()):
        if not path.is_file():
            raise OperationError(f"unexpected entry {path.name} in the dump folder")
        files.append(DumpFile(name=path.name, size=path.stat().st_size, sha256=sha256_file(path)))
    return files


def backup(
    project: Project,
    env_name: str,
    *,
    strict: bool = False,
    wait: float | None = None,
    progress: Progress | None = None,
    lock_held: bool = False,
    unsafe: Collection[str] = (),
) -> BackupResult:
    """Back up ``env_name`` into a new artifact.

    ``lock_held``: the caller (a deploy) already holds the env's lock and recovered it.
    """
    env = resolve_env(project, env_name)
    guardrails = Guardrails.for_skill(project, SKILL, unsafe)
    guardrails.hold("explicit_target", f"the env is named: {env.name}")
    guardrails.hold("verify_after_write", "dump files hashed as written, blobs checked")
    guardrails.hold("rollback_default", "a failed backup leaves no partial artifact")
    guardrails.hold("evidence_required", "this run's evidence is sealed by MANIFEST.sha256")
    guardrails.record("retention_policy_default", "not_applicable", "applies to prune")
    repo = ArtifactRepository(project.config.artifacts_dir)
    run_id = new_run_id()
    artifact_id = f"{env.name}-{run_id}"
    env_guard = (
        contextlib.nullcontext()
        if lock_held
        else project.store.lock(lock_name(env_lock(env.name)), wait=wait)
    )
    with (
        env_guard,
        # shared: a prune (exclusive) never removes a blob this backup relies on
        repo.lock(exclusive=False, wait=wait or 0.0),
    ):
        if not lock_held:
            recover(project, target=env_lock(env.name), lock_held=True)
        conn = env.connect()
        try:
            info = server_info(conn)
            tools = PgTools.for_major(info.major)
            jobs = max(1, min(4, os.cpu_count() or 1))
            tmp = repo.open_tmp(artifact_id)
            plan = {
                "action": "backup",
                "env": env.name,
                "role": env.role,
                "db": env.db,
                "filestore": str(env.filestore),
                "artifact_id": artifact_id,
                "artifact_path": str(repo.path(artifact_id)),
                "temp_path": str(tmp),
                "pg_server_version": info.version,
                "pg_bin_dir": str(tools.bin_dir),
                "jobs": jobs,
                "strict": strict,
            }
            run = Run.start(
                project,
                run_id=run_id,
                kind="odoo.backup",
                action="backup",
                target=env_lock(env.name),
                plan=plan,
                inputs={"command": "odoo backup", "env": env_name, "strict": strict},
                guardrails=guardrails,
            )
            try:
                return _execute(
                    project,
                    run,
                    env,
                    repo,
                    conn,
                    tools,
                    info.version,
                    tmp,
                    jobs,
                    artifact_id,
                    strict,
                    progress,
                )
            except BaseException as exc:
                _abandon(tmp)
                message = (
                    str(exc) if isinstance(exc, LiftgateError) else f"{type(exc).__name__}: {exc}"
                )
                run.finish(
                    status="failed",
                    message=f"backup of {env.name} failed: {message}",
                    result={"env": env.name},
                    summary=f"# liftgate backup {run_id}: FAIL\n\n{message}\n",
                )
                raise
        finally:
            conn.close()


def _abandon(tmp: Path) -> None:
    import shutil

    shutil.rmtree(tmp, ignore_errors=True)


def _execute(
    project: Project,
    run: Run,
    env: OdooEnv,
    repo: ArtifactRepository,
    conn: Any,
    tools: PgTools,
    server_version: str,
    tmp: Path,
    jobs: int,
    artifact_id: str,
    strict: bool,
    progress: Progress | None,
    *,
    source: SourceEnv | None = None,
    finish: bool = True,
) -> BackupResult:
    """Snapshot, dump, manifest, publish. ``source`` overrides the manifest's source_env
    (an import records the env it imports for); ``finish=False`` leaves the run open for
    the caller to finish."""
    started = time.monotonic()
    with run.step("snapshot") as detail:
        conn.rollback()
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        snap_row = conn.execute("SELECT pg_export_snapshot()").fetchone()
        snapshot = str(snap_row[0])
        facts = SnapshotFacts()
        read_odoo_facts(conn, facts)
        read_sequences(conn, facts)
        state = snapshot_state(conn)
        prev = reusable_dump(conn, repo, env.name, state, facts) if finish else None
        detail.update(
            snapshot=snapshot,
            attachments=len(facts.store_fnames),
            xid_snapshot=state.snapshot,
            reuses_dump_of=prev.artifact_id if prev else None,
        )

    argv = _dump_argv(tools, env, snapshot, tmp / "db", jobs)
    with run.step("dump") as detail:
        if prev is not None:
            # the database is provably what the previous artifact dumped: link its files
            reused_files = link_previous_dump(repo, prev, tmp / "db")
            entries, missing, corrupt, stored = _store_blobs(
                repo, env, facts.store_fnames, progress
            )
            argv, stderr = [], ""
        else:
            reused_files = None
            dump = subprocess.Popen(
                argv,
                env=env.child_env(),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            try:
                entries, missing, corrupt, stored = _store_blobs(
                    repo, env, facts.store_fnames, progress
                )
                read_counts(conn, facts)
            finally:
                _, stderr = dump.communicate()
            if dump.returncode != 0:
                raise OperationError(
                    f"pg_dump failed (exit {dump.returncode}): "
                    f"{project.redactor.text(first_error(stderr))}"
                )
        conn.rollback()  # the snapshot is no longer needed
        detail.update(
            argv=argv,
            pg_dump_log=project.redactor.text(stderr),
            blobs_new=stored,
            blobs_reused=len(entries) - stored,
            missing=missing,
            corrupt=corrupt,
            seconds=round(time.monotonic() - started, 3),
        )
    problems = missing + corrupt
    if strict and problems:
        raise OperationError(
            f"{len(missing)} referenced attachment file(s) missing and {len(corrupt)} not matching "
            f"their sha1 name (--strict), e.g. {problems[0]}"
        )

    with run.step("manifest") as detail:
        index_path = tmp / "filestore.jsonl"
        with open(index_path, "w", encoding="utf-8") as fh:
            for fname, sha1, size in entries:
                fh.write(
                    json.dumps({"fname": fname, "sha1": sha1, "size": size}, sort_keys=True) + "\n"
                )
        files = reused_files if reused_files is not None else _dump_files(tmp / "db")
        manifest = ArtifactManifest(
            format=FORMAT,
            artifact_id=artifact_id,
            created_at=utcnow(),  # microseconds: artifacts of one second stay ordered
            source_env=source or SourceEnv(name=env.name, role=env.role, db=env.db),
            db_dump=DbDump(
                format="directory",
                path="db",
                size=sum(f.size for f in files),
                sha256=dump_digest(files),
                files=files,
                pg_server_version=server_version,
                pg_dump_version=prev.db_dump.pg_dump_version if prev else tools.version("pg_dump"),
                snapshot=snapshot,
                state=DbState(
                    xid_snapshot=state.snapshot,
                    schema_digest=state.schema,
                    database_oid=state.oid,
                    reused_from=prev.artifact_id if prev else None,
                ),
            ),
            filestore=FilestoreInfo(
                count=len(entries),
                bytes=sum(size for _, _, size in entries),
                index=FileIndex(path="filestore.jsonl", sha256=index_digest(index_path)),
                missing=missing + corrupt,
            ),
            odoo=OdooInfo(
                version=facts.odoo_version,
                major_version=facts.odoo_version,
                modules=facts.modules,
                database_uuid=facts.database_uuid,
                addons_hash=facts.addons_hash,
            ),
            tables=facts.tables,
            sequences=facts.sequences,
            tool=ToolInfo(name="liftgate", version=__version__),
        )
        (tmp / "manifest.json").write_text(manifest.to_json(), encoding="utf-8")
        for path in tmp.rglob("*"):
            os.chmod(path, 0o700 if path.is_dir() else 0o600)
        fsync_tree(tmp)
        detail.update(files=len(files), bytes=manifest.db_dump.size)

    with run.step("publish", durable=True) as detail:
        final = repo.publish(tmp, artifact_id)
        detail["path"] = str(final)

    warnings = [f"referenced attachment file missing: {f}" for f in missing]
    warnings += [f"attachment file does not match its sha1 name: {f}" for f in corrupt]
    message = (
        f"backed up {env.name} ({env.db}) to artifact {artifact_id}: "
        f"{len(facts.tables)} tables, {len(entries)} files ({stored} new)"
        + (f"; database unchanged since {prev.artifact_id}, dump linked" if prev else "")
        + (f", {len(warnings)} warning(s)" if warnings else "")
    )
    seconds = round(time.monotonic() - started, 3)
    if finish:
        run.finish(
            status="ok",
            message=message,
            result={"env": env.name, "artifact_id": artifact_id, "artifact_path": str(final)},
            summary=(
                f"# liftgate backup {run.run_id}: OK\n\n{message}\n\n"
                f"- snapshot: {snapshot}\n- pg_dump: {' '.join(argv) or 'not run'}\n"
                + (
                    f"- database unchanged since {prev.artifact_id}: its dump is linked\n"
                    if prev
                    else ""
                )
                + f"- seconds: {seconds}\n"
                + "".join(f"- warning: {w}\n" for w in warnings)
            ),
            extra={
                "backup.json": {
                    "artifact_id": artifact_id,
                    "snapshot": snapshot,
                    "pg_dump_argv": argv,
                    "missing": missing,
                    "corrupt": corrupt,
                    "blobs_new": stored,
                    "reused_dump_of": prev.artifact_id if prev else None,
                    "seconds": seconds,
                }
            },
        )
    return BackupResult(
        status="OK",
        message=message,
        run_id=run.run_id,
        artifact_id=artifact_id,
        artifact_path=str(final),
        evidence_path=str(run.evidence.dir),
        warnings=warnings,
    )
