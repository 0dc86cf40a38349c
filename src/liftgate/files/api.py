"""The library API for staged file and folder promotion: ``promote`` and ``rollback``."""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping
from typing import Any

from liftgate.engine.guardrails import Guardrails
from liftgate.engine.paths import display
from liftgate.engine.project import Project
from liftgate.engine.recovery import lock_name, recover
from liftgate.engine.runs import new_run_id
from liftgate.files.execute import execute
from liftgate.files.plan import FilePlan, plan_promotion, plan_rollback
from liftgate.files.preview import preview
from liftgate.files.result import FileResult

__all__ = ["promote", "rollback", "run_request"]


def _dry_run(plan: FilePlan | None, action: str) -> FileResult:
    """The result of a dry run: the plan, the diff and (for a folder) the list of changes."""
    if plan is None:
        return FileResult(
            status="NOOP",
            action=action,
            message="the target already holds this content",
            extra={},
        )
    return FileResult(
        status="OK",
        action=action,
        message=f"dry run: would {action} {plan.target_display}; nothing was changed",
        staged_path=plan.source if action == "promote" else None,
        target_path=plan.target,
        backup_path=plan.backup_path,
        extra={"dry_run": True, "plan": plan.public(), **preview(plan)._asdict()},
    )


SKILL = "stage-promote-safe"


def _guardrails(
    project: Project, unsafe: Collection[str], target: str, dry_run: bool
) -> Guardrails:
    guardrails = Guardrails.for_skill(project, SKILL, unsafe, keep_parse=not dry_run)
    guardrails.hold(
        "explicit_target",
        f"target named as {target!r}: no glob, inside the project's roots, outside the state dir",
    )
    return guardrails


def promote(
    project: Project,
    staged: str | os.PathLike[str],
    target: str | os.PathLike[str],
    *,
    no_backup: bool = False,
    expect_prefix: str | None = None,
    force: bool = False,
    dry_run: bool = False,
    wait: float | None = None,
    unsafe: Collection[str] = (),
) -> FileResult:
    """Promote ``staged`` (a file or folder) onto the explicit ``target``."""
    staged, target = os.fspath(staged), os.fspath(target)
    staged_path = project.resolve(staged, what="staged")
    if not os.path.lexists(staged_path):
        from liftgate.errors import PathError

        raise PathError(f"the staged path {staged} does not exist")
    target_path = project.resolve(target, what="target")
    guardrails = _guardrails(project, unsafe, target, dry_run)
    run_id = new_run_id()
    inputs: dict[str, Any] = {
        "command": "promote",
        "staged": staged,
        "target": target,
        "no_backup": no_backup,
        "expect_prefix": expect_prefix,
        "force": force,
        "cwd": str(project.cwd),
    }

    def make_plan() -> FilePlan | None:
        return plan_promotion(
            project,
            run_id=run_id,
            staged=staged_path,
            target=target_path,
            no_backup=no_backup,
            expect_prefix=expect_prefix,
            force=force,
            guardrails=guardrails,
        )

    if dry_run:
        return _dry_run(make_plan(), "promote")
    with project.store.lock(lock_name(str(target_path)), wait=wait):
        recover(project, target=str(target_path), lock_held=True)
        plan = make_plan()
        if plan is None:
            return FileResult(
                status="NOOP",
                action="promote",
                message=f"{display(target_path, project.cwd)} already holds this content",
                extra={},
                staged_path=str(staged_path),
                target_path=str(target_path),
            )
        return execute(project, plan, inputs, guardrails)


def rollback(
    project: Project,
    target: str | os.PathLike[str],
    *,
    force: bool = False,
    dry_run: bool = False,
    wait: float | None = None,
    unsafe: Collection[str] = (),
) -> FileResult:
    """Undo the most recent promotion of ``target`` that is still in force."""
    target = os.fspath(target)
    target_path = project.resolve(target, what="target")
    guardrails = _guardrails(project, unsafe, target, dry_run)
    run_id = new_run_id()
    inputs = {"command": "rollback", "target": target, "force": force, "cwd": str(project.cwd)}
    if dry_run:
        return _dry_run(
            plan_rollback(project, run_id=run_id, target=target_path, force=force), "rollback"
        )
    with project.store.lock(lock_name(str(target_path)), wait=wait):
        recover(project, target=str(target_path), lock_held=True)
        plan = plan_rollback(project, run_id=run_id, target=target_path, force=force)
        for name in ("backup_before_write", "verify_after_write"):
            guardrails.record(name, "enforced", "the rollback keeps and checks what it replaces")
        return execute(project, plan, inputs, guardrails)


def run_request(action: str, project: Project, fields: Mapping[str, Any]) -> FileResult:
    """``promote`` or ``rollback`` from the fields of ``liftgate.requests.FilePromoteRequest``
    / ``FileRollbackRequest``: what the CLI and the request models both call."""
    common: dict[str, Any] = {
        "force": fields["force"],
        "dry_run": fields["dry_run"],
        "wait": fields["wait"],
        "unsafe": tuple(fields["unsafe_guardrails"]),
    }
    if action == "promote":
        return promote(
            project,
            fields["staged"],
            fields["target"],
            no_backup=fields["no_backup"],
            expect_prefix=fields["expect_prefix"],
            **common,
        )
    return rollback(project, fields["target"], **common)
