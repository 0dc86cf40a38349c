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
from liftgate.odoo.rollbackwindow import open_window, seconds_left
from liftgate.store.base import RunRecord

__all__ = ["env_status", "last_deploy", "slots_status"]


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


def slots_status(project: Project, env_name: str) -> dict[str, Any]:
    """A production env with slots: the active slot (read from the switch), its commit,
    the last promotion, blue's backup and the time left in the rollback window."""
    from liftgate.odoo.prodslots import SLOTS, ProdSlots

    slots = ProdSlots.resolve(project, env_name)
    try:
        active: str | None = slots.active()
        switch_error = None
    except LiftgateError as exc:
        active, switch_error = None, str(exc)
    per_slot: dict[str, Any] = {}
    for slot in SLOTS:
        try:
            spec = slots.spec(project, slot)
            per_slot[slot] = {
                "db": spec.env.db,
                "commit": spec.releases.current(),
                "url": spec.url,
            }
        except LiftgateError as exc:
            per_slot[slot] = {"error": str(exc)}
    promotions = project.store.list_runs(target=env_lock(env_name), kind="odoo.promote", limit=1)
    last = project.store.list_runs(target=env_lock(env_name), limit=1)
    promotion = promotions[0] if promotions else None
    window = open_window(project, env_name)
    window_left = round(seconds_left(window)) if window is not None else None
    commit = per_slot.get(active or "", {}).get("commit")
    return {
        "status": "OK" if switch_error is None else "FAIL",
        "action": "odoo status",
        "env": env_name,
        "role": slots.settings.role,
        "active_slot": active,
        "switch": slots.switch.describe(),
        "switch_error": switch_error,
        "commit": commit,
        "slots": per_slot,
        "artifact": promotion.result.get("blue_artifact") if promotion else None,
        "last_promotion": _run_summary(promotion),
        "last_run": _run_summary(last[0] if last else None),
        "rollback_window_seconds_left": window_left,
        "url": slots.settings.url,
        "message": f"{env_name}: {active or 'unknown'} serves"
        + (f" commit {str(commit)[:12]}" if commit else "")
        + (f"; rollback possible for {window_left} s" if window_left else ""),
    }


def env_status(project: Project, env_name: str) -> dict[str, Any]:
    settings = project.config.settings.env.get(env_name)
    if settings is not None and settings.slots is not None:
        return slots_status(project, env_name)
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
