"""Recovery of interrupted Odoo runs (registered with ``liftgate.engine.recovery``)."""

from __future__ import annotations

import shutil
from pathlib import Path

from liftgate.artifacts.repository import ArtifactRepository
from liftgate.engine.project import Project
from liftgate.engine.recovery import Outcome
from liftgate.engine.runs import Run
from liftgate.errors import LiftgateError
from liftgate.odoo import fingerprint
from liftgate.odoo.env import resolve_env
from liftgate.odoo.pgtools import database_exists
from liftgate.odoo.restore import (
    RestoreNames,
    finish_filestore_swap,
    maintenance_connection,
    undo_restore,
)
from liftgate.odoo.rollback import swap_back
from liftgate.store.base import RunRecord

__all__ = ["recover_backup", "recover_deploy", "recover_restore", "recover_restore_rollback"]


def _outcome(record: RunRecord, result: str, message: str) -> Outcome:
    return Outcome(record.run_id, record.kind, record.target, result, message)


def recover_backup(project: Project, record: RunRecord) -> Outcome:
    """Before publish: remove the temp folder (stored blobs stay, shared and harmless)."""
    run = Run.resume(project, record)
    plan = record.plan
    repo = ArtifactRepository(project.config.artifacts_dir)
    published = (repo.path(str(plan["artifact_id"])) / "manifest.json").is_file()
    if plan.get("temp_path"):
        shutil.rmtree(str(plan["temp_path"]), ignore_errors=True)
    if published:
        message = f"backup {plan['artifact_id']} was published before the interruption"
        run.finish(
            status="ok",
            message=message + " (completed by liftgate recover)",
            result={"env": plan["env"], "artifact_id": plan["artifact_id"]},
            summary=f"# liftgate backup {record.run_id}: OK\n\n{message}\n",
        )
        return _outcome(record, "completed", message)
    message = "backup interrupted before its artifact was published; the temp folder was removed"
    run.finish(
        status="failed",
        message=message,
        result={"env": plan["env"]},
        summary=f"# liftgate backup {record.run_id}: FAIL\n\n{message}\n",
    )
    return _outcome(record, "undone", message)


def recover_restore(project: Project, record: RunRecord) -> Outcome:
    plan = record.plan
    names = RestoreNames(**plan["names"])
    try:
        env = resolve_env(project, str(plan["env"]))
        admin = maintenance_connection(env)
    except LiftgateError as exc:
        return _outcome(record, "failed", f"cannot reach the env's database: {exc}")
    run = Run.resume(project, record)
    try:
        committed = (
            run.state_of("swap") is not None
            and not database_exists(admin, names.new_db)
            and database_exists(admin, names.db)
        )
        if not committed:
            if not undo_restore(admin, names):
                return _outcome(record, "failed", "the database server cannot be reached")
            message = "restore interrupted before its commit point; recover put the env back"
            run.finish(
                status="failed",
                message=message,
                result={"env": env.name, "artifact_id": plan["artifact_id"]},
                summary=f"# liftgate restore {record.run_id}: FAIL\n\n{message}\n",
            )
            return _outcome(record, "undone", message)
        finish_filestore_swap(names)
        message = f"restored {plan['artifact_id']} into {env.name} (completed by liftgate recover)"
        run.finish(
            status="ok",
            message=message,
            result={
                "env": env.name,
                "artifact_id": plan["artifact_id"],
                "names": names.__dict__,
                "replaced_existing": plan["replaces_existing"],
                "fingerprint": fingerprint.record(env, admin, {}),
            },
            summary=f"# liftgate restore {record.run_id}: OK\n\n{message}\n",
        )
        return _outcome(record, "completed", message)
    finally:
        admin.close()


def recover_restore_rollback(project: Project, record: RunRecord) -> Outcome:
    plan = record.plan
    names = RestoreNames(**plan["names"])
    env = resolve_env(project, str(plan["env"]))
    admin = maintenance_connection(env)
    run = Run.resume(project, record)
    try:
        swap_back(admin, names, str(plan["aside_db"]), str(plan["aside_fs"]))
        message = f"rolled back restore {plan['undoes']} (completed by liftgate recover)"
        run.finish(
            status="ok",
            message=message,
            result={"env": env.name, "undoes": plan["undoes"], "aside_db": plan["aside_db"]},
            summary=f"# liftgate restore rollback {record.run_id}: OK\n\n{message}\n",
        )
        return _outcome(record, "completed", message)
    finally:
        admin.close()


def recover_deploy(project: Project, record: RunRecord) -> Outcome:
    """Past the ``commit`` step: finish (drop the copies, prune). Before it: put back."""
    from liftgate.odoo.deploy import run_result
    from liftgate.odoo.deployundo import DeployNames, finish_deploy, undo_deploy
    from liftgate.odoo.releases import Releases

    plan = record.plan
    names = DeployNames(**plan["names"])
    try:
        env = resolve_env(project, str(plan["env"]))
        maintenance_connection(env).close()
    except LiftgateError as exc:
        return _outcome(record, "failed", f"cannot reach the env's database: {exc}")
    run = Run.resume(project, record)
    sha = str(plan["commit"])
    if run.state_of("commit") is not None:
        cleanup = finish_deploy(project, run, Releases(Path(str(plan["releases"]))), names, plan)
        message = f"deployed {sha[:12]} to {env.name} (completed by liftgate recover)"
        run.finish(
            status="ok",
            message=message,
            result=run_result(plan, "ok", cleanup=cleanup),
            summary=f"# liftgate deploy {record.run_id}: OK\n\n{message}\n",
        )
        return _outcome(record, "completed", message)
    undo = undo_deploy(project, run, env, names, plan, restart=True)
    verdict = (
        "put back" if not undo["errors"] else "NOT fully put back: " + "; ".join(undo["errors"])
    )
    message = f"deploy of {sha[:12]} to {env.name} interrupted before its commit point; {verdict}"
    for name, default in (
        ("git.json", {"note": "not recorded before the interruption"}),
        ("modules.json", {"note": "not recorded before the interruption"}),
        ("backup.json", {"backup": None, "note": "not reached"}),
        ("health.json", {"health": None, "smoke": [], "after_rollback": undo.get("health")}),
    ):
        if not run.evidence.has(name):
            run.evidence.write_json(name, default)
    if not run.evidence.has("update.log"):
        run.evidence.write_text("update.log", "(no update log: the run was interrupted)\n")
    run.finish(
        status="failed",
        message=message,
        result=run_result(plan, "failed", rolled_back=undo),
        summary=f"# liftgate deploy {record.run_id}: FAIL\n\n{message}\n",
        extra={"rollback.json": undo},
    )
    return _outcome(record, "undone" if not undo["errors"] else "failed", message)
