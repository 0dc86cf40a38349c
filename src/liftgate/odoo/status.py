"""``liftgate odoo status ENV``: what an env runs and what was last done to it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from liftgate.engine.project import Project
from liftgate.errors import LiftgateError
from liftgate.odoo import modulehash
from liftgate.odoo.backup import env_lock
from liftgate.odoo.env import resolve_env
from liftgate.odoo.releases import Releases
from liftgate.store.base import RunRecord

__all__ = ["env_status", "last_deploy"]


def last_deploy(project: Project, env_name: str, *, ok_only: bool = True) -> RunRecord | None:
    """The env's last deploy run (the last successful one unless ``ok_only`` is false)."""
    runs = project.store.list_runs(
        target=env_lock(env_name),
        kind="odoo.deploy",
        status="ok" if ok_only else None,
        limit=1,
    )
    return runs[0] if runs else None


def _run_summary(run: RunRecord | None) -> dict[str, Any] | None:
    if run is None:
        return None
    return {
        "run_id": run.run_id,
        "kind": run.kind,
        "status": run.status,
        "message": run.message,
        "started_at": run.created_at,
        "finished_at": run.finished_at,
    }


def env_status(project: Project, env_name: str) -> dict[str, Any]:
    env = resolve_env(project, env_name)
    settings = project.config.settings.env[env_name]
    releases = (
        Releases((project.config.base_dir / settings.releases).resolve())
        if settings.releases
        else None
    )
    current = releases.current() if releases else None
    deployed = last_deploy(project, env_name)
    last = project.store.list_runs(target=env_lock(env_name), limit=1)
    database: dict[str, Any] = {"name": env.db}
    try:
        with env.connect() as conn:
            database["recorded_checksums"] = len(modulehash.read_recorded(conn))
            database["reachable"] = True
    except LiftgateError as exc:
        database.update(reachable=False, error=str(exc))
    deployed_commit = deployed.result.get("commit") if deployed else None
    payload: dict[str, Any] = {
        "status": "OK",
        "action": "odoo status",
        "env": env.name,
        "role": env.role,
        "database": database,
        "filestore": str(env.filestore),
        "commit": deployed_commit,
        "release": str(releases.path(current)) if releases and current else None,
        "current": current,
        "current_matches_deploy": current == deployed_commit if deployed else None,
        "last_deploy": _run_summary(deployed),
        "last_run": _run_summary(last[0] if last else None),
        "url": settings.url,
    }
    if releases is not None:
        payload["releases"] = [sha for _, sha in releases.listed()]
        payload["releases_dir"] = str(Path(releases.root))
    payload["message"] = (
        f"{env.name}: commit {str(deployed_commit)[:12] if deployed_commit else 'none deployed'}"
        f", last run {last[0].run_id} {last[0].status}"
        if last
        else f"{env.name}: nothing run yet"
    )
    return payload
