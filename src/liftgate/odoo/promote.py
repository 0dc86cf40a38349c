"""``liftgate odoo promote STAGING PROD``: gated blue-green promotion of a production env.

Production has two slots behind a traffic switch: blue (active, serving) and green
(inactive). The promotion never modifies blue's data or code; green is prepared in the
inactive slot and traffic is cut over to it. Order, and why:

1. Create the run; check the seven preconditions (``preconditions.json``); refuse if any
   fails, changing nothing.
2. Snapshot staging (an artifact: what green's code was tested with) and back up blue
   (the rollback target). Nothing waits inside the freeze that can run before it.
3. Approval (``approval = "required"``, the only value for production): without
   ``--approve`` the run rehearses green on an unfrozen copy of production, smoke-tests it,
   and pauses as ``awaiting_approval``; ``liftgate approve RUN_ID`` resumes it.
4. ``--data production``: blue is frozen read-only (``default_transaction_read_only``,
   sessions ended) from before its data is copied until the cutover, so no write is
   lost; green gets blue's data (dump/restore by default: reads keep working; or a
   ``TEMPLATE`` copy: a short full outage) and staging's code, the changed modules are
   updated, and green starts read-only (no cron, no mail) for its smoke tests.
   ``--data staging``: green gets staging's artifact, then production's identity and
   outgoing mail servers and crons from blue (refused if they cannot be matched).
5. Cutover (the commit point): green made writable, the switch activated, blue left
   frozen — the only slot that can run crons or send mail is the one serving production.
6. The public URL is watched for the stability window; an unstable green is switched back
   to blue at once (blue unfrozen, green frozen and kept, renamed, with its writes counted).
7. Finalize: ``success``, ``failed`` or ``rolled_back``. ``liftgate odoo rollback PROD``
   switches back by hand within the rollback window.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import time
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from liftgate.artifacts.repository import ArtifactRepository
from liftgate.config import parse_duration
from liftgate.engine.guardrails import Guardrails
from liftgate.engine.project import Project
from liftgate.engine.recovery import lock_name, recover
from liftgate.engine.runs import Run, new_run_id, os_user
from liftgate.errors import (
    GuardrailError,
    LiftgateError,
    OperationError,
    UsageError,
    VerificationError,
)
from liftgate.odoo import freeze as freezing
from liftgate.odoo import slotcopy
from liftgate.odoo.backup import backup, env_lock
from liftgate.odoo.deploy import DeploySpec
from liftgate.odoo.env import resolve_env
from liftgate.odoo.greenslot import (
    GreenNames,
    load_green,
    stop_service,
    teardown_green,
)
from liftgate.odoo.pgtools import database_exists
from liftgate.odoo.preconditions import Preconditions, check_preconditions
from liftgate.odoo.prodslots import ProdSlots, Slot, other
from liftgate.odoo.restore import maintenance_connection
from liftgate.odoo.rollbackwindow import open_window
from liftgate.odoo.service import run_smoke
from liftgate.odoo.watch import watch
from liftgate.store.base import utcnow

__all__ = [
    "KIND",
    "SKILL",
    "SUMMARY",
    "PromoteResult",
    "abort",
    "approve_run",
    "finish_failed",
    "promote",
    "succeed",
    "switch_back",
]

KIND = "odoo.promote"
SKILL = "promote-staging-to-prod"
SUMMARY = "promotion_summary.md"
_LOG_TAIL = 200


@dataclass
class PromoteResult:
    status: str  # OK | PAUSED | FAIL
    message: str
    run_id: str | None
    env: str
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "action": "odoo promote",
            "run_id": self.run_id,
            "env": self.env,
            "message": self.message,
            **self.extra,
        }


def promote(
    project: Project,
    staging_name: str,
    prod_name: str,
    *,
    data: str = "production",
    approve: bool = False,
    dry_run: bool = False,
    replace_production_data: bool = False,
    close_window: bool = False,
    copy: str = "dump",
    wait: float | None = None,
    unsafe: Collection[str] = (),
) -> PromoteResult:
    """Promote what staging runs into production's inactive slot; see the module docstring."""
    if data not in ("production", "staging"):
        raise UsageError(f"--data must be production or staging, not {data!r}")
    if copy not in ("dump", "template"):
        raise UsageError(f"--copy must be dump or template, not {copy!r}")
    if data == "staging" and not replace_production_data:
        raise UsageError(
            f"--data staging replaces {prod_name}'s data with {staging_name}'s (every write "
            f"made to {prod_name} since staging was copied is dropped); pass "
            "--yes-replace-production-data to do that"
        )
    slots = ProdSlots.resolve(project, prod_name)
    guardrails = Guardrails.for_skill(project, SKILL, unsafe)
    guardrails.hold("explicit_target", f"{staging_name} and {prod_name} are named")
    staging = resolve_env(project, staging_name)
    if staging.role == "production":
        raise UsageError(f"{staging_name} is a production env; promote from a staging env")
    with project.store.lock(lock_name(env_lock(prod_name)), wait=wait):
        recover(project, target=env_lock(prod_name), lock_held=True)
        window = open_window(project, prod_name)
        if window is not None and not close_window:
            raise GuardrailError(
                f"the rollback window of promotion {window.run_id} is open until "
                f"{window.result['window_ends_at']}; a second promotion would leave no way back",
                hint="pass --close-window to end it (its slot becomes the next inactive one)",
            )
        if window is not None:
            from liftgate.odoo.prodrollback import close_window as end_window

            end_window(project, prod_name, lock_held=True)
        pre = check_preconditions(project, staging_name, slots, data=data)
        _gate(project, staging_name, pre, guardrails)
        plan = _plan(project, staging_name, slots, pre, data, copy, approve)
        if dry_run:
            return PromoteResult(
                status="OK",
                message=f"dry run: {pre.summary()}",
                run_id=None,
                env=prod_name,
                extra={"dry_run": True, "plan": plan, "preconditions": pre.as_list()},
            )
        run_id = plan["run_id"]
        run = Run.start(
            project,
            run_id=run_id,
            kind=KIND,
            action="promote",
            target=env_lock(prod_name),
            plan=plan,
            inputs={
                "command": "odoo promote",
                "staging": staging_name,
                "prod": prod_name,
                "data": data,
                "approve": approve,
                "copy": copy,
                "close_window": close_window,
                "unsafe": sorted(unsafe),
            },
            summary_name=SUMMARY,
            guardrails=guardrails,
        )
        run.evidence.write_json("preconditions.json", pre.as_dict())
        if not pre.ok:
            message = f"refused: {pre.failures()}"
            run.finish(
                status="refused",
                message=message,
                result={"outcome": "refused", "env": prod_name},
                summary=_summary(run, plan, "REFUSED", message),
            )
            raise GuardrailError(f"promotion of {staging_name} to {prod_name} {message}")
        approver = _approver(project, run_id) if approve else None
        return _drive(project, run, slots, plan, approved_by=approver)


def _gate(project: Project, staging: str, pre: Preconditions, guardrails: Guardrails) -> None:
    """Preconditions 1-2 are prod_requires_staging_success, 5 forbid_enterprise_modules:
    turned off (acknowledged), their failures are recorded but do not refuse."""
    for name, numbers, held in (
        ("prod_requires_staging_success", {1, 2}, "staging's last deploy succeeded on it"),
        ("forbid_enterprise_modules", {5}, "no Enterprise module in staging's release"),
    ):
        failing = [c for c in pre.checks if c["number"] in numbers and not c["ok"]]
        if not failing:
            guardrails.record(name, "enforced", held)
        elif guardrails.enabled(name):
            guardrails.record(name, "refused", "; ".join(str(c["detail"]) for c in failing))
        else:
            pre.waived |= numbers
            guardrails.record(name, "disabled_unsafe", "; ".join(str(c["detail"]) for c in failing))
    if pre.waived & {1, 2} and not pre.facts.get("staging_release"):
        spec = DeploySpec.resolve(project, staging)
        current = spec.releases.current()
        if current is None:
            raise UsageError(f"{staging} runs no release; there is nothing to promote")
        pre.facts.update(commit=current, staging_release=str(spec.releases.path(current)))
    for name, detail in (
        ("restore_never_drops_first", "blue is never modified; green's previous data set aside"),
        ("verify_after_write", "green's smoke tests before the cutover, the watch after it"),
        ("evidence_required", "this run's evidence is sealed by MANIFEST.sha256"),
    ):
        guardrails.hold(name, detail)


def approve_run(project: Project, run_id: str, *, wait: float | None = None) -> PromoteResult:
    """``liftgate approve RUN_ID``: a person lets a paused promotion go on."""
    record = project.store.get_run(run_id)
    if record is None:
        raise UsageError(f"there is no run {run_id}")
    if record.status != "awaiting_approval":
        raise UsageError(f"run {run_id} is {record.status}, not awaiting approval")
    plan = record.plan
    slots = ProdSlots.resolve(project, str(plan["prod"]))
    with project.store.lock(lock_name(record.target), wait=wait):
        current = project.store.get_run(run_id)
        if current is None or current.status != "awaiting_approval":
            raise UsageError(f"run {run_id} is no longer awaiting approval")
        pre = check_preconditions(
            project, str(plan["staging"]), slots, data=str(plan["data"]), resuming=run_id
        )
        changed = [
            what
            for what, now, then in (
                ("the active slot", pre.facts.get("active"), plan["blue"]),
                ("staging's commit", pre.facts.get("commit"), plan["commit"]),
            )
            if now != then
        ]
        if changed or not pre.ok:
            why = ", ".join(f"{c} changed" for c in changed) or pre.failures()
            raise GuardrailError(
                f"run {run_id} cannot go on: {why} since it was planned; start a new promotion"
            )
        project.store.set_run_status(run_id, "running", "approved")
        run = Run.resume(project, record, summary_name=SUMMARY)
        run.guardrails = Guardrails.for_skill(project, SKILL, _recorded_unsafe(run))
        _gate(project, str(plan["staging"]), pre, run.guardrails)
        return _drive(project, run, slots, plan, approved_by=os_user())


def _approver(project: Project, run_id: str) -> str:
    """Who approved: the person recorded on the approval this run was started for (an
    agent's call through ``liftgate mcp``, approved with ``liftgate approve apr-...``),
    else the OS user running the command with ``--approve``."""
    approval_id = os.environ.pop("LIFTGATE_APPROVAL_ID", None)
    if approval_id:
        record = project.store.get_approval(approval_id)
        if record is not None and record.run_id == run_id and record.approved_by:
            return f"{record.approved_by} (approval {approval_id} at {record.approved_at})"
    return os_user()


def _recorded_unsafe(run: Run) -> list[str]:
    try:
        inputs = json.loads((run.evidence.dir / "inputs.json").read_text())
    except (OSError, ValueError):
        return []
    return [str(n) for n in inputs.get("unsafe") or []]


def _plan(
    project: Project,
    staging_name: str,
    slots: ProdSlots,
    pre: Preconditions,
    data: str,
    copy: str,
    approve: bool,
) -> dict[str, Any]:
    run_id = new_run_id()
    blue: Slot = pre.facts.get("active") or "blue"
    green = other(blue)
    green_env = slots.env(project, green)
    blue_env = slots.env(project, blue)
    names = GreenNames.make(green_env, run_id)
    settings = slots.settings
    return {
        "run_id": run_id,
        "action": "promote",
        "staging": staging_name,
        "prod": slots.name,
        "data": data,
        "copy": copy,
        "commit": pre.facts.get("commit"),
        "staging_release": pre.facts.get("staging_release"),
        "blue": blue,
        "green": green,
        "blue_db": blue_env.db,
        "blue_filestore": str(blue_env.filestore),
        "green_names": names.__dict__,
        "switch": slots.switch.describe(),
        "rehearsal": not approve,
        "approval": settings.approval,
        "stability": settings.stability.model_dump(),
        "rollback_window": settings.rollback_window,
        "public_url": settings.url,
        "smoke": [c.model_dump() for c in settings.smoke],
    }


# -- the run ----------------------------------------------------------------------------


def _drive(
    project: Project,
    run: Run,
    slots: ProdSlots,
    plan: dict[str, Any],
    *,
    approved_by: str | None,
) -> PromoteResult:
    """Run (or resume) the promotion from where its journal says it is."""
    try:
        if run.state_of("staging_snapshot") != "done":
            _snapshots(project, run, plan)
        if approved_by is None:
            _rehearse(project, run, slots, plan)
            message = (
                f"green ({plan['green']}) rehearsed on an unfrozen copy of production and "
                f"passed its smoke tests; waiting for a person: liftgate approve {run.run_id}"
            )
            run.flush()
            project.store.set_run_status(run.run_id, "awaiting_approval", message)
            return PromoteResult(
                status="PAUSED",
                message=message,
                run_id=run.run_id,
                env=slots.name,
                extra={"approval_id": run.run_id, "evidence_path": str(run.evidence.dir)},
            )
        run.mark("approval", "done", {"by": approved_by, "at": utcnow()}, flush=True)
        _prepare_green(project, run, slots, plan)
        _smoke_green(project, run, slots, plan)
        cutover = _cutover(project, run, slots, plan)
    except BaseException as exc:
        undo = abort(project, run, slots, plan)
        if run.guardrails is not None:
            run.guardrails.record(
                "rollback_default", "enforced", "failed before the cutover: blue kept serving"
            )
        message = str(exc) if isinstance(exc, LiftgateError) else f"{type(exc).__name__}: {exc}"
        finish_failed(run, plan, "failed", f"promotion failed before the cutover: {message}", undo)
        if not isinstance(exc, Exception):
            raise
        raise OperationError(
            f"promotion of {plan['staging']} to {plan['prod']} failed before the cutover: "
            f"{message}; production stays on {plan['blue']} (run {run.run_id})",
            hint=f"evidence: {run.evidence.dir}",
        ) from exc
    report = _watch(run, plan)
    guardrails = run.guardrails
    if report["verdict"] != "stable" and guardrails is not None:
        if guardrails.enabled("rollback_default"):
            guardrails.record("rollback_default", "enforced", "unstable: switched back to blue")
        else:
            guardrails.record(
                "rollback_default",
                "disabled_unsafe",
                f"unstable ({report['reason']}) but left on green: rollback_default is off",
            )
            return succeed(project, run, plan, cutover)
    elif guardrails is not None:
        guardrails.record("rollback_default", "enforced", "stable: nothing to switch back")
    if report["verdict"] != "stable":
        undo = switch_back(project, run, slots, plan, reason=str(report["reason"]))
        message = (
            f"green ({plan['green']}) was unstable after the cutover ({report['reason']}); "
            f"switched back to {plan['blue']}"
        )
        finish_failed(run, plan, "rolled_back", message, undo)
        raise OperationError(f"{message} (run {run.run_id})", hint=f"evidence: {run.evidence.dir}")
    return succeed(project, run, plan, cutover)


def _snapshots(project: Project, run: Run, plan: dict[str, Any]) -> None:
    repo = ArtifactRepository(project.config.artifacts_dir)
    with run.step("staging_snapshot") as detail:
        snap = backup(project, str(plan["staging"]))
        assert snap.artifact_id is not None
        detail.update(artifact_id=snap.artifact_id, run_id=snap.run_id)
        run.evidence.write_json(
            "staging_snapshot.json",
            {
                "env": plan["staging"],
                "artifact_id": snap.artifact_id,
                "backup_run_id": snap.run_id,
                "commit": plan["commit"],
                "release": plan["staging_release"],
                "message": snap.message,
            },
        )
    guardrails = run.guardrails
    if guardrails is not None and not guardrails.enabled("backup_before_write"):
        guardrails.record("backup_before_write", "disabled_unsafe", "blue was not backed up")
        with run.step("blue_backup") as detail:
            detail["skipped"] = "backup_before_write off"
            run.evidence.write_json("blue_backup.json", {"skipped": "backup_before_write off"})
        return
    if guardrails is not None:
        guardrails.record("backup_before_write", "enforced", "blue backed up and verified")
    with run.step("blue_backup") as detail:
        blue_name = f"{plan['prod']}.{plan['blue']}"
        made = backup(project, blue_name)
        assert made.artifact_id is not None
        problems = repo.verify(made.artifact_id)
        if problems:
            raise VerificationError(f"blue's backup does not verify: {problems[0]}")
        detail.update(artifact_id=made.artifact_id, run_id=made.run_id)
        run.evidence.write_json(
            "blue_backup.json",
            {
                "slot": plan["blue"],
                "env": blue_name,
                "artifact_id": made.artifact_id,
                "backup_run_id": made.run_id,
                "verified": True,
                "message": made.message,
            },
        )


def _rehearse(project: Project, run: Run, slots: ProdSlots, plan: dict[str, Any]) -> None:
    """Before asking a person: green built on an unfrozen copy and smoke-tested."""
    if run.state_of("rehearsal_smoke") == "done":
        return
    report = load_green(project, run, slots, plan, freeze_blue=False, step="rehearsal")
    with run.step("rehearsal_smoke") as detail:
        spec = slots.spec(project, plan["green"])
        checks = run_smoke(str(spec.url), slots.settings.smoke) if slots.settings.smoke else []
        failed = [c for c in checks if not c["passed"]]
        detail.update(checks=len(checks), failed=len(failed))
        run.evidence.write_json("green_restore.json", {"rehearsal": report})
        run.evidence.write_json("smoke_tests.json", {"rehearsal": checks})
        if failed:
            raise VerificationError(
                f"the rehearsal of green failed smoke check {failed[0]['path']}: "
                f"{failed[0].get('error')}"
            )
    with run.step("rehearsal_teardown"):
        teardown_green(project, slots, plan, restore_aside=False)


def _prepare_green(project: Project, run: Run, slots: ProdSlots, plan: dict[str, Any]) -> None:
    freeze_blue = plan["data"] == "production"
    report = load_green(project, run, slots, plan, freeze_blue=freeze_blue, step="green")
    previous: dict[str, Any] = {}
    if run.evidence.has("green_restore.json"):
        previous = json.loads((run.evidence.dir / "green_restore.json").read_text())
    run.evidence.write_json("green_restore.json", {**previous, "final": report})


def _smoke_green(project: Project, run: Run, slots: ProdSlots, plan: dict[str, Any]) -> None:
    with run.step("smoke") as detail:
        spec = slots.spec(project, plan["green"])
        checks = run_smoke(str(spec.url), slots.settings.smoke) if slots.settings.smoke else []
        failed = [c for c in checks if not c["passed"]]
        detail.update(checks=len(checks), failed=len(failed))
        previous: dict[str, Any] = {}
        if run.evidence.has("smoke_tests.json"):
            previous = json.loads((run.evidence.dir / "smoke_tests.json").read_text())
        run.evidence.write_json(
            "smoke_tests.json",
            {**previous, "url": spec.url, "final": checks, "passed": not failed},
        )
        if failed:
            raise VerificationError(
                f"green failed smoke check {failed[0]['path']}: {failed[0].get('error')}"
            )


def _cutover(project: Project, run: Run, slots: ProdSlots, plan: dict[str, Any]) -> dict[str, Any]:
    """The commit point: green writable, traffic switched, blue frozen."""
    names = GreenNames(**plan["green_names"])
    green = slots.env(project, plan["green"])
    blue = slots.env(project, plan["blue"])
    with run.step("cutover", durable=True) as detail:
        gadmin = maintenance_connection(green)
        try:
            freezing.unfreeze(gadmin, names.db)
            with green.connect(names.db) as conn:
                counters = freezing.write_counters(conn)
        finally:
            gadmin.close()
        cut = slots.switch.activate(plan["green"])
        badmin = maintenance_connection(blue)
        try:
            if not freezing.is_frozen(badmin, blue.db):
                freezing.freeze(badmin, blue.db)
        finally:
            badmin.close()
        frozen_at = run.detail_of("freeze").get("at")
        freeze_seconds = round(time.time() - float(frozen_at), 3) if frozen_at else None
        detail.update(
            slot=plan["green"],
            previous=cut.previous,
            switch_ms=cut.elapsed_ms,
            green_counters=counters,
            freeze_seconds=freeze_seconds,
            at=utcnow(),
        )
        outage = float(run.detail_of("green_copy").get("outage_seconds", 0.0))
        run.evidence.write_json(
            "cutover.json",
            {
                "switch": slots.switch.describe(),
                "from": cut.previous,
                "to": plan["green"],
                "switch_ms": cut.elapsed_ms,
                "changed": cut.changed,
                "detail": cut.detail,
                "write_freeze_seconds": freeze_seconds,
                "outage_seconds": outage,
                "at": detail["at"],
            },
        )
        return dict(detail)


def _watch(run: Run, plan: dict[str, Any]) -> dict[str, Any]:
    stability = plan["stability"]
    with run.step("watch") as detail:
        report = watch(
            str(plan["public_url"]),
            window=parse_duration(stability["window"]),
            interval=parse_duration(stability["interval"]),
            max_error_rate=float(stability["max_error_rate"]),
            max_p95_ms=float(stability["max_p95_ms"]),
            health_path=str(stability["health"]),
            paths=[c["path"] for c in plan["smoke"]],
        ).as_dict()
        detail.update(verdict=report["verdict"], reason=report.get("reason"))
        run.evidence.write_json("stability_metrics.json", report)
    return report


def succeed(
    project: Project, run: Run, plan: dict[str, Any], cutover: dict[str, Any]
) -> PromoteResult:
    names = GreenNames(**plan["green_names"])
    green = resolve_env(project, f"{plan['prod']}.{plan['green']}")
    with run.step("finalize"):
        admin = maintenance_connection(green)
        try:
            if database_exists(admin, names.aside_db):
                slotcopy.drop_database(admin, names.aside_db)
        finally:
            admin.close()
        shutil.rmtree(names.aside_fs, ignore_errors=True)
    hours = parse_duration(str(plan["rollback_window"]))
    ends = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=hours)
    result = {
        "outcome": "success",
        "env": plan["prod"],
        "active": plan["green"],
        "previous": plan["blue"],
        "commit": plan["commit"],
        "blue_artifact": run.detail_of("blue_backup").get("artifact_id"),
        "staging_artifact": run.detail_of("staging_snapshot").get("artifact_id"),
        "cutover_at": cutover["at"],
        "green_counters": cutover["green_counters"],
        "write_freeze_seconds": cutover["freeze_seconds"],
        "window_ends_at": ends.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    message = (
        f"promoted {str(plan['commit'])[:12]} to {plan['prod']}: {plan['green']} serves "
        f"production; {plan['blue']} kept frozen for rollback until {result['window_ends_at']}"
    )
    run.finish(
        status="ok",
        message=message,
        result=result,
        summary=_summary(run, plan, "SUCCESS", message),
    )
    return PromoteResult(
        status="OK",
        message=message,
        run_id=run.run_id,
        env=str(plan["prod"]),
        extra={**result, "evidence_path": str(run.evidence.dir)},
    )


def finish_failed(
    run: Run, plan: dict[str, Any], outcome: str, message: str, undo: dict[str, Any]
) -> None:
    run.evidence.write_json("rollback.json", undo)
    for name in ("staging_snapshot.json", "blue_backup.json", "green_restore.json"):
        if not run.evidence.has(name):
            run.evidence.write_json(name, {"note": "not reached"})
    if not run.evidence.has("smoke_tests.json"):
        run.evidence.write_json("smoke_tests.json", {"note": "not reached"})
    if not run.evidence.has("cutover.json"):
        run.evidence.write_json("cutover.json", {"note": "no cutover"})
    if not run.evidence.has("stability_metrics.json"):
        run.evidence.write_json("stability_metrics.json", {"note": "not reached"})
    run.finish(
        status="failed" if outcome == "failed" else "rolled_back",
        message=message,
        result={"outcome": outcome, "env": plan["prod"], "active": plan["blue"], "undo": undo},
        summary=_summary(run, plan, outcome.upper(), message),
    )


def _summary(run: Run, plan: dict[str, Any], verdict: str, message: str) -> str:
    steps = [f"- {s.name}: {s.state}" for s in run.journal() if s.state != "started"]
    return (
        f"# liftgate promotion {run.run_id}: {verdict}\n\n{message}\n\n"
        f"- from {plan['staging']} (commit {plan['commit']}) to {plan['prod']}\n"
        f"- blue (serving before): {plan['blue']}; green (prepared): {plan['green']}\n"
        f"- data: {plan['data']} (copy: {plan['copy']})\n\n## Steps\n\n" + "\n".join(steps) + "\n"
    )


# -- ways back ---------------------------------------------------------------------------


def abort(project: Project, run: Run, slots: ProdSlots, plan: dict[str, Any]) -> dict[str, Any]:
    """Before the cutover: blue serving and unfrozen, green torn down. Never raises."""
    undo: dict[str, Any] = {"kind": "abort", "done": [], "errors": []}
    blue = slots.env(project, plan["blue"])
    try:
        if slots.switch.active() != plan["blue"]:
            slots.switch.activate(plan["blue"])
            undo["done"].append(f"switch back on {plan['blue']}")
    except LiftgateError as exc:
        undo["errors"].append(f"switch: {exc}")
    try:
        admin = maintenance_connection(blue)
        try:
            if run.state_of("freeze") is not None and freezing.is_frozen(admin, blue.db):
                freezing.unfreeze(admin, blue.db)
                undo["done"].append(f"freeze of {blue.db} lifted")
        finally:
            admin.close()
    except LiftgateError as exc:
        undo["errors"].append(f"freeze: {exc}")
    try:
        undo["done"] += teardown_green(project, slots, plan, restore_aside=True)
    except (LiftgateError, OSError, psycopg.Error) as exc:
        undo["errors"].append(f"green: {exc}")
    return undo


def switch_back(
    project: Project,
    run: Run,
    slots: ProdSlots,
    plan: dict[str, Any],
    *,
    reason: str,
    counters_at_cutover: dict[str, int] | None = None,
) -> dict[str, Any]:
    """After the cutover: traffic back on blue at once; green frozen, counted and kept."""
    started = time.monotonic()
    blue = slots.env(project, plan["blue"])
    green = slots.env(project, plan["green"])
    names = GreenNames(**plan["green_names"])
    undo: dict[str, Any] = {"kind": "switch_back", "reason": reason, "done": [], "errors": []}
    with run.step("switch_back", durable=True) as detail:
        badmin = maintenance_connection(blue)
        try:
            freezing.unfreeze(badmin, blue.db)
        finally:
            badmin.close()
        cut = slots.switch.activate(plan["blue"])
        undo["switch_ms"] = cut.elapsed_ms
        undo["seconds_to_blue"] = round(time.monotonic() - started, 3)
        gadmin = maintenance_connection(green)
        try:
            freezing.freeze(gadmin, names.db)
            with green.connect(names.db) as conn:
                after = freezing.write_counters(conn)  # exact: freeze ended its sessions
        finally:
            gadmin.close()
        before = counters_at_cutover or run.detail_of("cutover").get("green_counters") or {}
        undo["green_writes_after_cutover"] = freezing.writes_since(before, after)
        detail.update(undo)
    try:
        spec = slots.spec(project, plan["green"])
        stop_service(spec, "stopping green's service")
        gadmin = maintenance_connection(green)
        try:
            slotcopy.rename_alone(gadmin, names.db, names.kept_db)
        finally:
            gadmin.close()
        if Path(names.filestore).exists():
            Path(names.filestore).rename(names.kept_fs)
        undo["green_kept_as"] = {"db": names.kept_db, "filestore": names.kept_fs}
    except (LiftgateError, OSError, psycopg.Error) as exc:
        undo["errors"].append(f"keeping green aside: {exc}")
    return undo
