"""``liftgate odoo restore --rollback ENV``: put the pre-restore database and filestore back.

Only the most recent restore of the env can be rolled back, and only once: a rollback is
itself never rolled back. The restored database is not dropped: it is kept under
``<db>_rbk_<suffix>`` (and its filestore beside the live one) until someone removes it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from liftgate.engine.fsops import fsync_dir
from liftgate.engine.project import Project
from liftgate.engine.recovery import lock_name, recover
from liftgate.engine.runs import Run, new_run_id
from liftgate.errors import IntegrityError, UsageError
from liftgate.odoo.backup import env_lock
from liftgate.odoo.env import resolve_env
from liftgate.odoo.pgtools import (
    database_exists,
    rename_database,
    run_db_name,
    terminate_sessions,
)
from liftgate.odoo.restore import (
    RestoreNames,
    RestoreResult,
    _last_restore,
    maintenance_connection,
)

__all__ = ["rollback_restore"]


def _aside(names: RestoreNames, run_id: str) -> tuple[str, str]:
    fs = Path(names.filestore)
    return run_db_name(names.db, "rbk", run_id), str(fs.parent / f"{fs.name}.rolled-back-{run_id}")


def swap_back(admin: Any, names: RestoreNames, aside_db: str, aside_fs: str) -> None:
    """Idempotent: restored db/filestore aside, pre-restore ones back in place."""
    if database_exists(admin, names.db) and not database_exists(admin, aside_db):
        terminate_sessions(admin, names.db)
        rename_database(admin, names.db, aside_db)
    if database_exists(admin, names.pre_db) and not database_exists(admin, names.db):
        rename_database(admin, names.pre_db, names.db)
    live, pre, aside = Path(names.filestore), Path(names.pre_fs), Path(aside_fs)
    if live.exists() and not aside.exists():
        os.rename(live, aside)
    if pre.exists() and not live.exists():
        os.rename(pre, live)
    fsync_dir(live.parent)


def rollback_restore(
    project: Project, env_name: str, *, wait: float | None = None
) -> RestoreResult:
    env = resolve_env(project, env_name)
    with project.store.lock(lock_name(env_lock(env.name)), wait=wait):
        recover(project, target=env_lock(env.name), lock_held=True)
        last = _last_restore(project, env)
        if last is None:
            raise UsageError(f"there is no restore of {env.name} to roll back")
        if last["kind"] == "odoo.restore-rollback":
            raise UsageError(
                f"the last restore of {env.name} was already rolled back (run {last['run_id']}); "
                "a rollback is not rolled back"
            )
        names = RestoreNames(**last["names"])
        admin = maintenance_connection(env)
        try:
            if last.get("replaced_existing") and not database_exists(admin, names.pre_db):
                raise IntegrityError(
                    f"the pre-restore database {names.pre_db} is gone; nothing to put back"
                )
            run_id = new_run_id()
            aside_db, aside_fs = _aside(names, run_id)
            run = Run.start(
                project,
                run_id=run_id,
                kind="odoo.restore-rollback",
                action="restore-rollback",
                target=env_lock(env.name),
                plan={
                    "action": "restore-rollback",
                    "env": env.name,
                    "undoes": last["run_id"],
                    "names": names.__dict__,
                    "aside_db": aside_db,
                    "aside_fs": aside_fs,
                },
                inputs={"command": "odoo restore --rollback", "env": env.name},
            )
            with run.step("swap", durable=True):
                swap_back(admin, names, aside_db, aside_fs)
            message = (
                f"rolled back restore {last['run_id']} of {env.name}: the previous database and "
                f"filestore are back; the restored ones are kept as {aside_db}"
            )
            run.finish(
                status="ok",
                message=message,
                result={"env": env.name, "undoes": last["run_id"], "aside_db": aside_db},
                summary=f"# liftgate restore rollback {run_id}: OK\n\n{message}\n",
            )
            return RestoreResult(
                status="OK",
                message=message,
                run_id=run_id,
                env=env.name,
                artifact_id=str(last.get("artifact_id")),
                evidence_path=str(run.evidence.dir),
                extra={"undoes": last["run_id"], "aside_db": aside_db},
            )
        finally:
            admin.close()
