"""Recovery of interrupted promotions: production ends served by exactly one healthy slot.

Before the cutover (the commit point) a promotion is undone: the switch on blue, blue's
freeze lifted, green torn down. After it, it is completed: green serves, writable; blue
stays frozen (no cron, no mail) for the rollback window. An interrupted switch-back is
finished.
"""

from __future__ import annotations

from liftgate.engine.project import Project
from liftgate.engine.recovery import Outcome
from liftgate.engine.runs import Run
from liftgate.errors import LiftgateError
from liftgate.odoo import freeze as freezing
from liftgate.odoo.greenslot import GreenNames
from liftgate.odoo.prodslots import ProdSlots
from liftgate.odoo.promote import (
    SUMMARY,
    abort,
    finish_failed,
    succeed,
    switch_back,
)
from liftgate.odoo.restore import maintenance_connection
from liftgate.store.base import RunRecord, utcnow

__all__ = ["recover_promote", "recover_promote_close", "recover_promote_rollback"]


def _outcome(record: RunRecord, result: str, message: str) -> Outcome:
    return Outcome(record.run_id, record.kind, record.target, result, message)


def recover_promote(project: Project, record: RunRecord) -> Outcome:
    plan = record.plan
    try:
        slots = ProdSlots.resolve(project, str(plan["prod"]))
        active = slots.active()
    except LiftgateError as exc:
        return _outcome(record, "failed", f"cannot read production's switch: {exc}")
    run = Run.resume(project, record, summary_name=SUMMARY)
    if run.state_of("switch_back") is not None:
        undo = switch_back(
            project, run, slots, plan, reason="completing an interrupted switch back"
        )
        message = f"switch back to {plan['blue']} completed by liftgate recover"
        finish_failed(run, plan, "rolled_back", message, undo)
        return _outcome(record, "undone", message)
    cut = run.state_of("cutover")
    if cut == "done" or (cut == "started" and active == plan["green"]):
        names = GreenNames(**plan["green_names"])
        green = slots.env(project, plan["green"])
        blue = slots.env(project, plan["blue"])
        with maintenance_connection(green) as admin:
            if freezing.is_frozen(admin, names.db):
                freezing.unfreeze(admin, names.db)
        with maintenance_connection(blue) as admin:
            if not freezing.is_frozen(admin, blue.db):
                freezing.freeze(admin, blue.db)
        cutover = dict(run.detail_of("cutover"))
        if not cutover:
            with green.connect(names.db) as conn:
                cutover = {
                    "at": utcnow(),
                    "green_counters": freezing.write_counters(conn),
                    "freeze_seconds": None,
                }
        if not run.evidence.has("stability_metrics.json"):
            run.evidence.write_json(
                "stability_metrics.json",
                {"verdict": "not watched", "note": "interrupted; completed by liftgate recover"},
            )
        result = succeed(project, run, plan, cutover)
        return _outcome(record, "completed", result.message + " (completed by liftgate recover)")
    undo = abort(project, run, slots, plan)
    message = (
        f"promotion interrupted before the cutover; {plan['blue']} serves production, "
        "green torn down (liftgate recover)"
    )
    finish_failed(run, plan, "failed", message, undo)
    return _outcome(record, "undone" if not undo["errors"] else "failed", message)


def recover_promote_rollback(project: Project, record: RunRecord) -> Outcome:
    plan = record.plan
    slots = ProdSlots.resolve(project, str(plan["prod"]))
    run = Run.resume(project, record)
    undo = switch_back(
        project,
        run,
        slots,
        plan,
        reason="completing an interrupted rollback",
        counters_at_cutover=plan.get("green_counters"),
    )
    run.evidence.write_json("rollback.json", undo)
    message = f"rollback of {plan['undoes']} completed by liftgate recover"
    run.finish(
        status="ok",
        message=message,
        result={"outcome": "rolled_back", "env": plan["prod"], "undoes": plan["undoes"], **undo},
        summary=f"# liftgate rollback {record.run_id}: OK\n\n{message}\n",
    )
    return _outcome(record, "completed", message)


def recover_promote_close(project: Project, record: RunRecord) -> Outcome:
    run = Run.resume(project, record)
    message = f"closed the rollback window of {record.plan.get('closes')} (liftgate recover)"
    run.finish(
        status="ok",
        message=message,
        result={"closes": record.plan.get("closes")},
        summary=f"# liftgate close window {record.run_id}: OK\n\n{message}\n",
    )
    return _outcome(record, "completed", message)
