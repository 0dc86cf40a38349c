"""``liftgate odoo restore ARTIFACT --env ENV``: restore into a new database, then swap it in.

Invariants, and the order that follows from them:

1. Nothing is touched before the artifact is known to be good: the contract validates and
   every checksum (dump files, index, every blob) is re-read first, and disk space checked.
2. The live database is never dropped: the artifact is restored into a NEW database
   (``pg_restore --exit-on-error`` as the env's own, non-superuser role), verified (row
   counts, sequences, every referenced attachment present), given a new identity when it
   is a copy of another env, neutralized when the env asks, and only then swapped in by
   renames. The previous database and filestore stay under ``<name>_pre_<suffix>`` /
   ``<filestore>.pre-<run>`` for ``--rollback``.
3. The commit point is the rename of the new database to the env's name. Before it a
   failure (or ``recover``) drops only what the run created; after it ``recover``
   completes the filestore swap.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from liftgate.artifacts.contract import ArtifactManifest
from liftgate.artifacts.repository import ArtifactRepository
from liftgate.engine.fsops import fsync_dir
from liftgate.engine.guardrails import Guardrails
from liftgate.engine.project import Project
from liftgate.engine.recovery import lock_name, recover
from liftgate.engine.runs import Run, new_run_id
from liftgate.errors import (
    GuardrailError,
    IntegrityError,
    LiftgateError,
    OperationError,
    UsageError,
)
from liftgate.odoo import slotcopy
from liftgate.odoo.backup import env_lock
from liftgate.odoo.env import OdooEnv, resolve_env
from liftgate.odoo.fingerprint import record, unchanged
from liftgate.odoo.neutralize import neutralize as neutralize_db
from liftgate.odoo.neutralize import new_identity
from liftgate.odoo.pgtools import (
    PgTools,
    database_exists,
    rename_database,
    run_db_name,
    server_info,
    terminate_sessions,
)
from liftgate.odoo.snapshot import SnapshotFacts, read_counts, read_odoo_facts, read_sequences

__all__ = ["SKILL", "RestoreNames", "RestoreResult", "restore", "restore_into"]

SKILL = "restore-odoo-environment"


@dataclass
class RestoreResult:
    status: str
    message: str
    run_id: str | None
    env: str
    artifact_id: str
    evidence_path: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "action": "odoo restore",
            "run_id": self.run_id,
            "env": self.env,
            "artifact_id": self.artifact_id,
            "evidence_path": self.evidence_path,
            "message": self.message,
            **self.extra,
        }


@dataclass(frozen=True)
class RestoreNames:
    """Every name a restore run uses, derived from the env and the run id."""

    db: str
    new_db: str
    pre_db: str
    filestore: str
    new_fs: str
    pre_fs: str

    @classmethod
    def make(cls, env: OdooEnv, run_id: str) -> RestoreNames:
        fs = env.filestore
        return cls(
            db=env.db,
            new_db=run_db_name(env.db, "lgn", run_id),
            pre_db=run_db_name(env.db, "pre", run_id),
            filestore=str(fs),
            new_fs=str(fs.parent / f".{fs.name}.lg-new-{run_id}"),
            pre_fs=str(fs.parent / f"{fs.name}.pre-{run_id}"),
        )


def maintenance_connection(env: OdooEnv) -> psycopg.Connection[Any]:
    """An autocommit connection for CREATE/ALTER/DROP DATABASE, as the env's own role."""
    last: LiftgateError | None = None
    for dbname in ("postgres", "template1", env.db):
        try:
            return env.connect(dbname, autocommit=True)
        except LiftgateError as exc:
            last = exc
    assert last is not None
    raise last


def _last_restore(project: Project, env: OdooEnv) -> dict[str, Any] | None:
    for run in project.store.list_runs(target=env_lock(env.name), status="ok", limit=20):
        if run.kind in ("odoo.restore", "odoo.restore-rollback"):
            return {**run.result, "kind": run.kind, "run_id": run.run_id}
    return None


def _check_space(manifest: ArtifactManifest, env: OdooEnv, repo: ArtifactRepository) -> None:
    parent = env.filestore.parent
    if not parent.is_dir():
        raise UsageError(f"the folder of the env's filestore {parent} does not exist")
    same_fs = os.stat(parent).st_dev == os.stat(repo.blobs.root).st_dev
    need = (0 if same_fs else manifest.filestore.bytes) + 64 * 1024 * 1024
    free = shutil.disk_usage(parent).free
    if free < need:
        raise UsageError(
            f"not enough free space for the filestore in {parent}: {need} bytes needed, {free} free"
        )


def restore(
    project: Project,
    artifact: str,
    env_name: str,
    *,
    neutralize: bool | None = None,
    force: bool = False,
    wait: float | None = None,
    unsafe: Collection[str] = (),
) -> RestoreResult:
    """Restore ``artifact`` into ``env_name``; see the module docstring for the order."""
    env = resolve_env(project, env_name)
    guardrails = Guardrails.for_skill(project, SKILL, unsafe)
    guardrails.hold("explicit_target", f"artifact {artifact} into the named env {env.name}")
    wants = env.neutralize if neutralize is None else neutralize
    if env.role == "production":
        guardrails.record("neutralize_non_production", "not_applicable", "a production env")
    else:
        guardrails.check(
            "neutralize_non_production",
            wants,
            f"--no-neutralize asks to restore into {env.name} ({env.role}) without "
            "neutralizing: the copy could send mail, run crons and take payments",
            hint="turn neutralize_non_production off for restore-odoo-environment in the "
            "project's registry override and pass --unsafe-guardrail neutralize_non_production",
        )
    for name, detail in (
        ("verify_after_write", "row counts, sequences and attachments checked before the swap"),
        ("rollback_default", "a failure before the swap drops only what the run created"),
        ("evidence_required", "this run's evidence is sealed by MANIFEST.sha256"),
    ):
        guardrails.hold(name, detail)
    repo = ArtifactRepository(project.config.artifacts_dir)
    manifest = repo.load(artifact)
    with project.store.lock(lock_name(env_lock(env.name)), wait=wait):
        recover(project, target=env_lock(env.name), lock_held=True)
        admin = maintenance_connection(env)
        try:
            return _restore_locked(
                project, env, repo, manifest, admin, neutralize, force, guardrails
            )
        finally:
            admin.close()


def _restore_locked(
    project: Project,
    env: OdooEnv,
    repo: ArtifactRepository,
    manifest: ArtifactManifest,
    admin: psycopg.Connection[Any],
    neutralize: bool | None,
    force: bool,
    guardrails: Guardrails,
) -> RestoreResult:
    info = server_info(admin)
    if info.superuser:
        raise GuardrailError(
            f"the env's database role {info.user} is a superuser; liftgate restores only as a "
            "non-superuser role, so a hostile dump cannot run superuser-only SQL",
            hint="give the env a role that owns its database and has CREATEDB",
        )
    exists = database_exists(admin, env.db)
    last = _last_restore(project, env)
    if (
        exists
        and not force  # --force always restores
        and last is not None
        and last.get("kind") == "odoo.restore"
        and last.get("artifact_id") == manifest.artifact_id
        and unchanged(env, admin, last.get("fingerprint") or {})
    ):
        return RestoreResult(
            status="NOOP",
            message=f"{env.name} already holds artifact {manifest.artifact_id} and nothing was "
            f"committed since run {last['run_id']} restored it",
            run_id=None,
            env=env.name,
            artifact_id=manifest.artifact_id,
        )
    if exists and not force:
        raise GuardrailError(
            f"database {env.db} of env {env.name} exists; refusing to replace it without --force",
            hint="with --force the current database and filestore are kept under pre-restore "
            "names, and liftgate odoo restore --rollback puts them back",
        )
    problems = repo.verify(manifest.artifact_id, read_data=True)
    if problems:
        raise IntegrityError(
            f"artifact {manifest.artifact_id} does not verify, nothing was changed: {problems[0]}"
        )
    _check_space(manifest, env, repo)
    tools = PgTools.for_major(info.major)
    run_id = new_run_id()
    names = RestoreNames.make(env, run_id)
    wants_neutralize = env.neutralize if neutralize is None else neutralize
    plan = {
        "action": "restore",
        "env": env.name,
        "role": env.role,
        "artifact_id": manifest.artifact_id,
        "artifact_path": str(repo.path(manifest.artifact_id)),
        "source_env": manifest.source_env.model_dump(),
        "replaces_existing": exists,
        "names": names.__dict__,
        "neutralize": wants_neutralize,
        "new_identity": manifest.source_env.name != env.name,
        "pg_bin_dir": str(tools.bin_dir),
    }
    run = Run.start(
        project,
        run_id=run_id,
        kind="odoo.restore",
        action="restore",
        target=env_lock(env.name),
        plan=plan,
        inputs={
            "command": "odoo restore",
            "artifact": manifest.artifact_id,
            "env": env.name,
            "neutralize": neutralize,
            "force": force,
        },
        guardrails=guardrails,
    )
    try:
        return _execute(project, run, env, repo, manifest, admin, tools, names, plan)
    except BaseException as exc:
        if run.state_of("swap") in ("started", "done") and _committed(admin, names):
            raise
        if not undo_restore(admin, names):
            # the server is unreachable: the run stays open, and liftgate recover (or the next
            # command on this env) drops what it created once the server is back
            raise OperationError(
                f"restore of {manifest.artifact_id} into {env.name} failed and the database "
                f"server cannot be reached to clean up; the live database was not touched: {exc}",
                hint="run liftgate recover once the server is back",
            ) from exc
        message = str(exc) if isinstance(exc, LiftgateError) else f"{type(exc).__name__}: {exc}"
        run.finish(
            status="failed",
            message=f"restore of {manifest.artifact_id} into {env.name} failed, the env is as it "
            f"was: {message}",
            result={"env": env.name, "artifact_id": manifest.artifact_id},
            summary=f"# liftgate restore {run_id}: FAIL\n\n{message}\n\nThe env was not changed.\n",
        )
        raise


def _keep_or_drop_previous(
    run: Run, admin: psycopg.Connection[Any], names: RestoreNames, plan: dict[str, Any]
) -> None:
    """restore_never_drops_first: the previous database and filestore stay for --rollback;
    turned off (acknowledged), they are dropped after the swap — no way back then."""
    guardrails = run.guardrails
    if guardrails is None or not plan["replaces_existing"]:
        if guardrails is not None:
            guardrails.record("restore_never_drops_first", "not_applicable", "nothing replaced")
        return
    if guardrails.enabled("restore_never_drops_first"):
        guardrails.record(
            "restore_never_drops_first",
            "enforced",
            f"restored into a new database, swapped in; the previous kept as {names.pre_db}",
        )
        return
    with run.step("drop_previous"):
        slotcopy.drop_database(admin, names.pre_db)
        shutil.rmtree(names.pre_fs, ignore_errors=True)
    guardrails.record(
        "restore_never_drops_first",
        "disabled_unsafe",
        f"the previous database {names.pre_db} and filestore were dropped after the swap",
    )


def _committed(admin: psycopg.Connection[Any], names: RestoreNames) -> bool:
    try:
        return not database_exists(admin, names.new_db) and database_exists(admin, names.db)
    except psycopg.Error:
        return False


def undo_restore(admin: psycopg.Connection[Any] | None, names: RestoreNames) -> bool:
    """Put back what a restore changed before its commit point; drop what it created.

    Returns False when the database server could not be reached to do it.
    """
    shutil.rmtree(names.new_fs, ignore_errors=True)
    if admin is None or admin.closed:
        return False
    try:
        if database_exists(admin, names.pre_db) and not database_exists(admin, names.db):
            rename_database(admin, names.pre_db, names.db)
        if database_exists(admin, names.new_db):
            terminate_sessions(admin, names.new_db)
            admin.execute(sql.SQL("DROP DATABASE {}").format(sql.Identifier(names.new_db)))
    except psycopg.Error:
        return False
    return True


def _pg_restore(
    project: Project, env: OdooEnv, tools: PgTools, artifact_dir: Path, names: RestoreNames
) -> list[str]:
    argv = [
        tools.path("pg_restore"),
        f"--dbname={env.conninfo(names.new_db)}",
        "--exit-on-error",
        "--no-owner",
        "--no-privileges",
        f"--jobs={max(1, min(4, os.cpu_count() or 1))}",
        str(artifact_dir / "db"),
    ]
    log: list[str] = []
    try:
        tools.run(argv, env=env.child_env(), redactor=project.redactor, what="pg_restore", log=log)
    except OperationError as exc:
        command = _failed_statement(log[-1] if log else "")
        raise OperationError(
            str(exc) + (f"; the statement was: {command}" if command else ""),
            hint="the dump needs more than the env's own role may do",
        ) from None
    return argv


def _failed_statement(stderr: str) -> str | None:
    for line in stderr.splitlines():
        if "Command was:" in line:
            return line.split("Command was:", 1)[1].strip()[:300]
    return None


def _verify_restored(
    conn: psycopg.Connection[Any], manifest: ArtifactManifest, repo: ArtifactRepository
) -> list[str]:
    facts = SnapshotFacts()
    read_odoo_facts(conn, facts)
    read_sequences(conn, facts)
    read_counts(conn, facts)
    problems = []
    for table, count in manifest.tables.items():
        if facts.tables.get(table) != count:
            problems.append(f"table {table}: {facts.tables.get(table)} rows, expected {count}")
    for seq, value in manifest.sequences.items():
        found = facts.sequences.get(seq)
        if found is None or found < value:  # read before the dump: a lower bound
            problems.append(f"sequence {seq}: {found}, expected at least {value}")
    indexed = {e.fname for e in repo.read_index(manifest.artifact_id)}
    known_missing = set(manifest.filestore.missing)
    for fname in facts.store_fnames:
        if fname not in indexed and fname not in known_missing:
            problems.append(f"attachment file {fname} is referenced but not in the artifact")
    return problems


def _build_filestore(repo: ArtifactRepository, manifest: ArtifactManifest, target: Path) -> str:
    method = "link"
    target.mkdir(mode=0o700)
    folders: set[Path] = set()
    for entry in repo.read_index(manifest.artifact_id):
        dst = target / entry.fname
        if dst.parent not in folders:
            dst.parent.mkdir(mode=0o700, exist_ok=True)
            folders.add(dst.parent)
        if repo.blobs.link_or_copy(entry.sha1, dst) == "copy":
            method = "copy"
    for folder in folders:
        fsync_dir(folder)
    fsync_dir(target)
    fsync_dir(target.parent)
    return method


def _swap(admin: psycopg.Connection[Any], names: RestoreNames, run: Run) -> None:
    if database_exists(admin, names.db):
        for attempt in range(20):
            terminate_sessions(admin, names.db)
            try:
                rename_database(admin, names.db, names.pre_db)
                break
            except psycopg.errors.ObjectInUse:
                if attempt == 19:
                    raise OperationError(
                        f"database {names.db} keeps getting new sessions; cannot swap it out"
                    ) from None
                time.sleep(0.1)
    from liftgate.engine.failpoints import failpoint

    failpoint("restore.swap.moved_out")
    rename_database(admin, names.new_db, names.db)  # the commit point
    failpoint("restore.swap.committed")
    finish_filestore_swap(names)


def finish_filestore_swap(names: RestoreNames) -> None:
    """Move the new filestore into place (idempotent; after the commit point)."""
    live, new, pre = Path(names.filestore), Path(names.new_fs), Path(names.pre_fs)
    if not new.exists():
        return
    if live.exists() and not pre.exists():
        os.rename(live, pre)
    elif live.exists():
        shutil.rmtree(live)  # a previous attempt already kept the old one as pre
    os.rename(new, live)
    fsync_dir(live.parent)


def _execute(
    project: Project,
    run: Run,
    env: OdooEnv,
    repo: ArtifactRepository,
    manifest: ArtifactManifest,
    admin: psycopg.Connection[Any],
    tools: PgTools,
    names: RestoreNames,
    plan: dict[str, Any],
) -> RestoreResult:
    started = time.monotonic()
    with run.step("createdb"):
        admin.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE template0 ENCODING 'UTF8'").format(
                sql.Identifier(names.new_db)
            )
        )
    with run.step("pg_restore") as detail:
        detail["argv"] = _pg_restore(project, env, tools, repo.path(manifest.artifact_id), names)
    actions: list[str] = []
    identity: dict[str, str] = {}
    with env.connect(names.new_db) as conn:
        with run.step("verify") as detail:
            problems = _verify_restored(conn, manifest, repo)
            detail["problems"] = problems
            if problems:
                raise IntegrityError(
                    f"the restored database does not match the artifact: {problems[0]}"
                )
        with run.step("identity") as detail:
            if plan["new_identity"]:
                identity = new_identity(conn)
            detail.update(identity)
        with run.step("neutralize") as detail:
            if plan["neutralize"]:
                actions = neutralize_db(conn)
            detail["actions"] = actions
        conn.commit()
        conn.autocommit = True
        conn.execute("ANALYZE")
    with run.step("filestore") as detail:
        detail["method"] = _build_filestore(repo, manifest, Path(names.new_fs))
    with run.step("swap", durable=True):
        _swap(admin, names, run)
    _keep_or_drop_previous(run, admin, names, plan)
    with run.step("fingerprint") as detail:
        counts = {t: c for t, c in manifest.tables.items()}
        detail.update(record(env, admin, counts))
    seconds = round(time.monotonic() - started, 3)
    message = (
        f"restored {manifest.artifact_id} into {env.name} ({env.db})"
        + ("; neutralized" if actions else "")
        + ("; new database.uuid" if identity else "")
        + (f"; previous database kept as {names.pre_db}" if plan["replaces_existing"] else "")
    )
    run.finish(
        status="ok",
        message=message,
        result={
            "env": env.name,
            "artifact_id": manifest.artifact_id,
            "names": names.__dict__,
            "replaced_existing": plan["replaces_existing"],
            "fingerprint": run.detail_of("fingerprint"),
        },
        summary=f"# liftgate restore {run.run_id}: OK\n\n{message}\n\n- seconds: {seconds}\n"
        + "".join(f"- neutralize: {a}\n" for a in actions),
        extra={
            "restore.json": {
                "artifact_id": manifest.artifact_id,
                "names": names.__dict__,
                "neutralize": actions,
                "identity": identity,
                "seconds": seconds,
            }
        },
    )
    return RestoreResult(
        status="OK",
        message=message,
        run_id=run.run_id,
        env=env.name,
        artifact_id=manifest.artifact_id,
        evidence_path=str(run.evidence.dir),
        extra={"previous_db": names.pre_db if plan["replaces_existing"] else None},
    )


def restore_into(
    project: Project, artifact_id: str, env: OdooEnv, db: str, filestore: Path
) -> dict[str, Any]:
    """Restore an artifact into the NEW database ``db`` and the new filestore folder
    ``filestore`` (verified like a restore), without swapping anything: a promotion's
    green slot is built this way. Neither identity nor neutralization is changed."""
    repo = ArtifactRepository(project.config.artifacts_dir)
    manifest = repo.load(artifact_id)
    problems = repo.verify(manifest.artifact_id, read_data=True)
    if problems:
        raise IntegrityError(f"artifact {artifact_id} does not verify: {problems[0]}")
    started = time.monotonic()
    admin = maintenance_connection(env)
    try:
        tools = PgTools.for_major(server_info(admin).major)
        if database_exists(admin, db):
            raise OperationError(f"database {db} exists; refusing to restore over it")
        admin.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE template0 ENCODING 'UTF8'").format(
                sql.Identifier(db)
            )
        )
        names = RestoreNames(
            db=db, new_db=db, pre_db=db, filestore=str(filestore), new_fs="", pre_fs=""
        )
        _pg_restore(project, env, tools, repo.path(manifest.artifact_id), names)
        with env.connect(db) as conn:
            problems = _verify_restored(conn, manifest, repo)
            if problems:
                raise IntegrityError(f"the restored database does not match: {problems[0]}")
            conn.commit()
            conn.autocommit = True
            conn.execute("ANALYZE")
    finally:
        admin.close()
    method = _build_filestore(repo, manifest, filestore)
    return {
        "artifact_id": artifact_id,
        "db": db,
        "filestore": str(filestore),
        "filestore_method": method,
        "seconds": round(time.monotonic() - started, 3),
    }
