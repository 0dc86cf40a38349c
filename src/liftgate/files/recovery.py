"""Recovery of interrupted file runs (registered with ``liftgate.engine.recovery``).

* commit never started → undo (remove the staged copy and the backup); the run failed and
  the target is untouched;
* commit started → decide from the target itself whether the switch happened; if it did,
  complete the run with the same idempotent ``after_commit`` a live run uses, otherwise undo.
"""

from __future__ import annotations

from liftgate.engine.project import Project
from liftgate.engine.recovery import Outcome
from liftgate.engine.runs import Run
from liftgate.errors import LiftgateError
from liftgate.files.execute import _switched, after_commit, undo
from liftgate.files.plan import FilePlan
from liftgate.store.base import RunRecord

__all__ = ["recover_run"]


def recover_run(project: Project, record: RunRecord) -> Outcome:
    def outcome(result: str, message: str) -> Outcome:
        return Outcome(record.run_id, record.kind, record.target, result, message)

    try:
        plan = FilePlan.from_public(record.plan)
    except (ValueError, KeyError, TypeError):
        project.store.finish_run(
            record.run_id,
            status="failed",
            message="interrupted; its plan could not be read back, nothing was recovered",
            result={},
        )
        return outcome("failed", "the plan of this run could not be read back")
    run = Run.resume(project, record)
    commit = run.state_of("commit")
    committed = commit == "done" or (commit is not None and _switched(plan, run))
    if not committed:
        undo(project, plan)
        message = (
            f"{plan.action} of {plan.target_display} was interrupted before its commit point; "
            "recover undid it and the target was not changed"
        )
        run.finish(
            status="failed",
            message=message,
            result={"kind": plan.kind, "target": plan.target, "recovered": "undone"},
            summary=f"# liftgate {plan.action} {plan.run_id}: FAIL\n\n{message}\n",
        )
        return outcome("undone", message)
    try:
        result = after_commit(run, project, plan, recovering=True)
    except LiftgateError as exc:
        return outcome("failed", str(exc))
    return outcome("completed", result.message)
