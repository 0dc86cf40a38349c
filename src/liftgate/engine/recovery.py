"""``liftgate recover``: finish what interrupted runs left behind.

A run whose status is still ``running`` while nobody holds its target's lock was
interrupted (its process died: the lock dies with it). Each kind of run registers a handler
that undoes the run if it had not passed its commit point and completes it otherwise. A run
whose target lock is held is alive and is left alone.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import NamedTuple

from liftgate.engine.project import Project
from liftgate.errors import LockedError
from liftgate.store.base import RunRecord

__all__ = ["Outcome", "lock_name", "recover"]

Handler = Callable[[Project, RunRecord], "Outcome"]

# kind -> "module:function"; imported on demand so the engine knows no domain
_HANDLERS: dict[str, str] = {
    "files.promote": "liftgate.files.recovery:recover_run",
    "files.rollback": "liftgate.files.recovery:recover_run",
    "odoo.backup": "liftgate.odoo.recovery:recover_backup",
    "odoo.restore": "liftgate.odoo.recovery:recover_restore",
    "odoo.restore-rollback": "liftgate.odoo.recovery:recover_restore_rollback",
    "odoo.import": "liftgate.odoo.odooimport:recover_import",
    "odoo.deploy": "liftgate.odoo.recovery:recover_deploy",
    "odoo.promote": "liftgate.odoo.promoterecovery:recover_promote",
    "odoo.promote-rollback": "liftgate.odoo.promoterecovery:recover_promote_rollback",
    "odoo.promote-close": "liftgate.odoo.promoterecovery:recover_promote_close",
}


class Outcome(NamedTuple):
    run_id: str
    kind: str
    target: str
    result: str  # "completed" | "undone" | "skipped" | "failed"
    message: str


def lock_name(target: str) -> str:
    return f"target:{target}"


def _handler(kind: str) -> Handler:
    spec = _HANDLERS.get(kind)
    if spec is None:
        raise LookupError(f"no recovery handler for runs of kind {kind}")
    module, _, func = spec.partition(":")
    fn: Handler = getattr(importlib.import_module(module), func)
    return fn


def interrupted_runs(project: Project, target: str | None = None) -> list[RunRecord]:
    runs = project.store.list_runs(
        status="running", target=target, host=project.host, state_dir=str(project.state_dir)
    )
    return sorted(runs, key=lambda r: (r.created_at, r.run_id))


def recover(
    project: Project, *, target: str | None = None, lock_held: bool = False
) -> list[Outcome]:
    """Recover every interrupted run (on ``target`` only, when given).

    ``lock_held``: the caller already holds ``target``'s lock (a mutating command recovering
    its own target before it starts).
    """
    outcomes: list[Outcome] = []
    runs = interrupted_runs(project, target)
    if runs:
        project.history.reconcile()
    for run in runs:
        handler = _handler(run.kind)
        if lock_held and target == run.target:
            outcomes.append(handler(project, run))
            continue
        try:
            with project.store.lock(lock_name(run.target), wait=0):
                fresh = project.store.get_run(run.run_id)
                if fresh is None or fresh.status != "running":
                    continue
                outcomes.append(handler(project, fresh))
        except LockedError:
            outcomes.append(
                Outcome(run.run_id, run.kind, run.target, "skipped", "still running (lock held)")
            )
    return outcomes
