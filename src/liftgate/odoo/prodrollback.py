"""``liftgate odoo rollback PROD``: switch back to the previous slot within the window.

The previous slot (blue of the last promotion) was kept warm and frozen read-only since
the cutover, so switching back is: lift blue's freeze, activate it on the switch, freeze
green. Green's database is never dropped: the writes it accepted after the cutover are
counted from its own statistics, and without ``--discard-green-writes`` a green that took
writes is not rolled back. Green is kept, renamed, for recovery.
"""

from __future__ import annotations

from typing import Any

from liftgate.engine.project import Project
from liftgate.engine.recovery import lock_name, recover
from liftgate.engine.runs import Run, new_run_id
from liftgate.errors import GuardrailError
from liftgate.odoo import freeze as freezing
from liftgate.odoo.backup import env_lock
from liftgate.odoo.greenslot import GreenNames
from liftgate.odoo.prodslots import ProdSlots
from liftgate.odoo.promote import PromoteResult, switch_back
from liftgate.odoo.rollbackwindow import last_promotion, seconds_left

__all__ = ["close_window", "rollback_promotion"]


def rollback_promotion(
    project: Project, prod: str, *, discard_green_writes: bool = False, wait: float | None = None
) -> PromoteResult:
    slots = ProdSlots.resolve(project, prod)
    with project.store.lock(lock_name(env_lock(prod)), wait=wait):
        recover(project, target=env_lock(prod), lock_held=True)
        last = last_promotion(project, prod)
        if last is None:
            raise GuardrailError(f"{prod} has no promotion whose rollback window is open")
        if seconds_left(last) <= 0:
            raise GuardrailError(
                f"the rollback window of promotion {last.run_id} ended at "
                f"{last.result['window_ends_at']}; restore blue's backup "
                f"{last.result.get('blue_artifact')} instead"
            )
        plan = last.plan
        green = slots.env(project, plan["green"])
        names = GreenNames(**plan["green_names"])
        with green.connect(names.db) as conn:
            after = freezing.write_counters(conn, settle=1.0)
        writes = freezing.writes_since(last.result.get("green_counters") or {}, after)
        if writes and not discard_green_writes:
            raise GuardrailError(
                f"{plan['green']} accepted {writes} writes since the cutover; rolling back "
                f"to {plan['blue']} would leave them in {plan['green']}'s database (kept, "
                "renamed) but not in production",
                hint="pass --discard-green-writes to roll back anyway",
            )
        run_id = new_run_id()
        run = Run.start(
            project,
            run_id=run_id,
            kind="odoo.promote-rollback",
            action="promote-rollback",
            target=env_lock(prod),
            plan={
                **plan,
                "undoes": last.run_id,
                "rollback_run_id": run_id,
                "green_counters": last.result.get("green_counters"),
            },
            inputs={
                "command": "odoo rollback",
                "env": prod,
                "discard_green_writes": discard_green_writes,
            },
        )
        undo = switch_back(
            project,
            run,
            slots,
            plan,
            reason="manual rollback",
            counters_at_cutover=last.result.get("green_counters"),
        )
        run.evidence.write_json("rollback.json", undo)
        message = (
            f"rolled back promotion {last.run_id}: {plan['blue']} serves {prod} again "
            f"({undo.get('seconds_to_blue')} s); {plan['green']} kept as "
            f"{(undo.get('green_kept_as') or {}).get('db')} with "
            f"{undo.get('green_writes_after_cutover')} writes after the cutover"
        )
        result: dict[str, Any] = {
            "outcome": "rolled_back",
            "env": prod,
            "active": plan["blue"],
            "undoes": last.run_id,
            **undo,
        }
        run.finish(
            status="ok",
            message=message,
            result=result,
            summary=f"# liftgate rollback {run_id}: OK\n\n{message}\n",
        )
        return PromoteResult(
            status="OK" if not undo["errors"] else "FAIL",
            message=message,
            run_id=run_id,
            env=prod,
            extra={**result, "evidence_path": str(run.evidence.dir)},
        )


def close_window(project: Project, prod: str, *, lock_held: bool) -> str | None:
    """End the open rollback window (the previous slot becomes the next inactive one)."""
    last = last_promotion(project, prod)
    if last is None:
        return None
    run = Run.start(
        project,
        run_id=new_run_id(),
        kind="odoo.promote-close",
        action="promote-close",
        target=env_lock(prod),
        plan={"closes": last.run_id, "env": prod, "lock_held": lock_held},
        inputs={"command": "odoo promote --close-window", "env": prod},
    )
    message = f"closed the rollback window of promotion {last.run_id}"
    run.finish(
        status="ok",
        message=message,
        result={"closes": last.run_id},
        summary=f"# liftgate close window {run.run_id}: OK\n\n{message}\n",
    )
    return last.run_id
