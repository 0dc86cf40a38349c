"""The way back of a deploy: put back before its commit point, clean up after it.

Decided from what exists, so it is as safe after a crash (``liftgate recover``) as after a
failure in the run itself: the database copy replaces the database only once the update
had started; ``current`` goes back to the previous release; the service is started again
on the old code when it had been running.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from liftgate.engine.project import Project
from liftgate.engine.runs import Run
from liftgate.envconfig import ServiceCommands
from liftgate.odoo import slotcopy
from liftgate.odoo.env import OdooEnv, resolve_env
from liftgate.odoo.pgtools import (
    database_exists,
    rename_database,
    run_db_name,
)
from liftgate.odoo.releases import Releases
from liftgate.odoo.restore import maintenance_connection
from liftgate.odoo.service import run_command, wait_health

__all__ = ["DeployNames", "finish_deploy", "undo_deploy"]


@dataclass(frozen=True)
class DeployNames:
    """Every name a deploy run uses, derived from the env and the run id."""

    db: str
    copy_db: str
    failed_db: str
    filestore: str
    copy_fs: str
    failed_fs: str

    @classmethod
    def make(cls, env: OdooEnv, run_id: str) -> DeployNames:
        fs = env.filestore
        return cls(
            db=env.db,
            copy_db=run_db_name(env.db, "lgd", run_id),
            failed_db=run_db_name(env.db, "lgf", run_id),
            filestore=str(fs),
            copy_fs=str(fs.parent / f".{fs.name}.lg-back-{run_id}"),
            failed_fs=str(fs.parent / f".{fs.name}.lg-failed-{run_id}"),
        )


def finish_deploy(
    project: Project, run: Run, releases: Releases, names: DeployNames, plan: dict[str, Any]
) -> dict[str, Any]:
    """After the commit point: drop the way-back copies and prune old releases."""
    env = resolve_env(project, str(plan["env"]))
    done: dict[str, Any] = {}
    with run.step("cleanup") as detail:
        admin = maintenance_connection(env)
        try:
            slotcopy.drop_database(admin, names.copy_db)
        finally:
            admin.close()
        shutil.rmtree(names.copy_fs, ignore_errors=True)
        releases.touch(str(plan["commit"]))
        done["pruned_releases"] = releases.prune(
            int(plan["keep_releases"]), protect=[plan["previous_commit"]]
        )
        detail.update(done)
    return done


def undo_deploy(
    project: Project,
    run: Run,
    env: OdooEnv,
    names: DeployNames,
    plan: dict[str, Any],
    *,
    restart: bool,
) -> dict[str, Any]:
    """Put back what a deploy changed before its commit point; returns what was done.

    Decided from what exists, so it is safe after a crash at any moment: the database copy
    replaces the database only once the update had started; ``current`` goes back to the
    previous release; the service is started again on the old code.
    """
    releases = Releases(Path(str(plan["releases"])))
    previous = plan["previous_commit"]
    done: dict[str, Any] = {"run_id": run.run_id, "reverted": [], "errors": []}
    service = ServiceCommands.model_validate(plan["service"]) if plan.get("service") else None
    update_started = run.state_of("update") is not None

    def attempt(what: str, fn: Any) -> None:
        try:
            fn()
            done["reverted"].append(what)
        except Exception as exc:  # keep going: report every part that could not be undone
            done["errors"].append(f"{what}: {exc}")

    if releases.current() != previous:
        attempt(
            "current",
            lambda: releases.switch(previous) if previous else releases.unlink_current(),
        )
    touched = update_started or any(run.state_of(step) is not None for step in ("stop", "restart"))
    if service is not None and service.stop and touched:
        attempt("service stopped", lambda: run_command(service.stop or [], "stopping"))
    attempt("database", lambda: _database_back(env, names, update_started))
    attempt("filestore", lambda: _filestore_back(names, update_started))
    noted = [s.detail for s in run.journal() if s.name == "service" and s.state == "noted"]
    was_running = bool(noted[-1].get("was_running", True)) if noted else True
    if restart and service is not None and touched and was_running:
        argvs = [service.start] if service.start and service.stop else service.restart_argvs()
        for argv in argvs:
            attempt("service started", lambda argv=argv: run_command(argv, "starting"))
        if plan.get("url"):
            done["health"] = wait_health(str(plan["url"]), float(plan["health_timeout"]))
    return done


def _database_back(env: OdooEnv, names: DeployNames, update_started: bool) -> None:
    admin = maintenance_connection(env)
    try:
        if not database_exists(admin, names.copy_db):
            return
        if update_started:
            if database_exists(admin, names.db):
                slotcopy.rename_alone(admin, names.db, names.failed_db)
            rename_database(admin, names.copy_db, names.db)
            slotcopy.drop_database(admin, names.failed_db)
        else:
            slotcopy.drop_database(admin, names.copy_db)
    finally:
        admin.close()


def _filestore_back(names: DeployNames, update_started: bool) -> None:
    copy, live, failed = Path(names.copy_fs), Path(names.filestore), Path(names.failed_fs)
    if not copy.exists():
        return
    if update_started:
        if live.exists():
            live.rename(failed)
        copy.rename(live)
        shutil.rmtree(failed, ignore_errors=True)
    else:
        shutil.rmtree(copy, ignore_errors=True)
