"""``liftgate recover``, ``history``, ``runs`` and ``evidence``: reading and repairing state."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from liftgate.cli.context import open_project
from liftgate.cli.options import JsonOpt, WaitOpt
from liftgate.cli.output import emit, escape, guarded, out
from liftgate.engine.evidence import verify_bundle
from liftgate.engine.project import Project
from liftgate.engine.recovery import recover as recover_runs
from liftgate.errors import UsageError
from liftgate.store.base import RunRecord

__all__ = ["register"]


history_app = typer.Typer(help="The hash-chained history of every promotion and rollback.")
runs_app = typer.Typer(help="Runs recorded in the ops store.", no_args_is_help=True)
evidence_app = typer.Typer(help="Evidence bundles.", no_args_is_help=True)


def _run_dict(run: RunRecord, full: bool = False) -> dict[str, Any]:
    data = run._asdict()
    if not full:
        data.pop("plan")
    return data


def register(app: typer.Typer) -> None:
    app.add_typer(history_app, name="history")
    app.add_typer(runs_app, name="runs")
    app.add_typer(evidence_app, name="evidence")

    @app.command()
    def recover(ctx: typer.Context, as_json: JsonOpt = False) -> None:
        """Undo interrupted runs that had not reached their commit point; complete the rest."""

        def body() -> None:
            project = open_project(ctx)
            outcomes = recover_runs(project) if project.has_state else []
            failed = [o for o in outcomes if o.result == "failed"]
            payload = {
                "status": "FAIL" if failed else ("OK" if outcomes else "NOOP"),
                "action": "recover",
                "run_id": None,
                "message": f"{len(outcomes)} interrupted run(s) handled"
                + (f", {len(failed)} could not be recovered" if failed else ""),
                "runs": [o._asdict() for o in outcomes],
            }

            def human(p: dict[str, Any]) -> None:
                out.print(f"{p['status']} recover: {escape(p['message'])}")
                for o in p["runs"]:
                    out.print(f"  {o['run_id']} {o['result']}: {escape(o['message'])}")

            emit(payload, as_json, human)

        guarded("recover", as_json, body)

    @app.command()
    def approve(
        ctx: typer.Context,
        run_id: Annotated[
            str,
            typer.Argument(
                metavar="RUN_ID|APPROVAL_ID",
                help="A run waiting for approval, or an approval an agent asked for (apr-...).",
            ),
        ],
        wait: WaitOpt = None,
        as_json: JsonOpt = False,
    ) -> None:
        """Approve (a person: the OS user and time are recorded) a paused run, which goes on,
        or an agent's request (apr-...), which lets it make that exact call once."""

        def body() -> None:
            from liftgate.engine.approvals import is_approval_id

            if is_approval_id(run_id):
                _approve_request(open_project(ctx), run_id, as_json)
                return
            from liftgate.odoo.promote import approve_run

            emit(approve_run(open_project(ctx), run_id, wait=wait).as_dict(), as_json)

        guarded("approve", as_json, body)


def _approve_request(project: Project, approval_id: str, as_json: bool) -> None:
    """``liftgate approve apr-...``: record the person's approval of an agent's call."""
    from liftgate.engine import approvals
    from liftgate.engine.runs import os_user

    record, changed = approvals.approve(project, approval_id, os_user())
    where = f" on {record.env}" + (" (production)" if record.production else "")
    call = f"{record.tool}{where if record.env else ''}"
    payload = {
        "status": "OK" if changed else "NOOP",
        "action": "approve",
        "run_id": None,
        "approval_id": record.approval_id,
        "message": (
            f"approved {record.approval_id}: {call}; the agent may make this exact call once, "
            f"until {record.expires_at}"
            if changed
            else f"{record.approval_id} was already approved by {record.approved_by} "
            f"at {record.approved_at}"
        ),
        "tool": record.tool,
        "args": record.args,
        "summary": record.summary,
        "env": record.env,
        "production": record.production,
        "approved_by": record.approved_by,
        "approved_at": record.approved_at,
        "expires_at": record.expires_at,
    }

    def human(p: dict[str, Any]) -> None:
        colour = "green" if p["status"] == "OK" else "cyan"
        out.print(f"[{colour}]{p['status']}[/] approve: {escape(p['message'])}")
        if p["summary"]:
            out.print(f"  what: {escape(p['summary'])}")
        for key, value in p["args"].items():
            out.print(f"  {escape(key)}: {escape(json.dumps(value))}")

    emit(payload, as_json, human)


@history_app.callback(invoke_without_command=True)
def history(
    ctx: typer.Context,
    target: Annotated[str | None, typer.Option("--target", help="Only this target.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Show the history (newest last)."""
    if ctx.invoked_subcommand is not None:
        return

    def body() -> None:
        project = open_project(ctx)
        entries: list[dict[str, Any]] = []
        if project.has_state:
            entries = project.history.entries()
            if target is not None:
                wanted = str(project.resolve(target, what="target"))
                entries = [e for e in entries if e.get("target") == wanted]
        payload = {
            "status": "OK",
            "action": "history",
            "run_id": None,
            "message": f"{len(entries)} entries",
            "entries": entries,
        }

        def human(p: dict[str, Any]) -> None:
            for e in p["entries"]:
                out.print(
                    f"{e.get('seq'):>5} {e.get('ts')} {e.get('action'):<8} {e.get('outcome'):<8} "
                    f"{e.get('run_id')} {escape(str(e.get('target')))}"
                )
            out.print(f"{p['message']}")

        emit(payload, as_json, human)

    guarded("history", as_json, body)


@history_app.command("verify")
def history_verify(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Check the hash chain and its head in the ops store; non-zero on any tampering."""

    def body() -> None:
        project = open_project(ctx)
        if not project.has_state:
            emit(
                {
                    "status": "NOOP",
                    "action": "history verify",
                    "run_id": None,
                    "message": "no history yet",
                },
                as_json,
            )
        report = project.history.verify()
        payload = {
            "status": "OK" if report.ok else "FAIL",
            "action": "history verify",
            "run_id": None,
            "message": f"history verifies: {report.count} lines"
            if report.ok
            else f"history does not verify: {report.problems[0]}",
            "exit_code": 6,
            **report.as_dict(),
        }
        emit(payload, as_json)

    guarded("history verify", as_json, body)


@runs_app.command("list")
def runs_list(
    ctx: typer.Context,
    target: Annotated[str | None, typer.Option("--target")] = None,
    status: Annotated[str | None, typer.Option("--status")] = None,
    limit: Annotated[int, typer.Option("--limit")] = 50,
    as_json: JsonOpt = False,
) -> None:
    """List runs, newest first."""

    def body() -> None:
        project = open_project(ctx)
        runs: list[RunRecord] = []
        if project.has_state:
            wanted = str(project.resolve(target, what="target")) if target else None
            runs = project.store.list_runs(target=wanted, status=status, limit=limit)
        payload = {
            "status": "OK",
            "action": "runs list",
            "run_id": None,
            "message": f"{len(runs)} runs",
            "runs": [_run_dict(r) for r in runs],
        }

        def human(p: dict[str, Any]) -> None:
            for r in p["runs"]:
                out.print(
                    f"{r['run_id']}  {r['kind']:<16} {r['status']:<8} {escape(r['target'])}  "
                    f"{escape(r['message'])}"
                )
            out.print(p["message"])

        emit(payload, as_json, human)

    guarded("runs list", as_json, body)


@runs_app.command("show")
def runs_show(ctx: typer.Context, run_id: str, as_json: JsonOpt = False) -> None:
    """Show one run with its plan and step journal."""

    def body() -> None:
        project = open_project(ctx)
        run = project.store.get_run(run_id) if project.has_state else None
        if run is None:
            raise UsageError(f"there is no run {run_id}")
        steps = [s._asdict() for s in project.store.steps(run_id)]
        payload = {
            "status": "OK",
            "action": "runs show",
            "run_id": run_id,
            "message": run.message or run.status,
            "run": _run_dict(run, full=True),
            "steps": steps,
            "evidence_path": str(project.config.evidence_dir / run_id),
        }

        def human(p: dict[str, Any]) -> None:
            r = p["run"]
            out.print(f"run {r['run_id']}: {r['kind']} {r['status']} on {escape(r['target'])}")
            out.print(f"  {escape(r['message'])}")
            for s in p["steps"]:
                out.print(f"  {s['seq']:>3} {s['at']} {s['name']:<10} {s['state']}")
            out.print(f"  evidence: {escape(p['evidence_path'])}")

        emit(payload, as_json, human)

    guarded("runs show", as_json, body)


@evidence_app.command("verify")
def evidence_verify(
    ctx: typer.Context,
    run: Annotated[str, typer.Argument(metavar="RUN_ID|DIR")],
    as_json: JsonOpt = False,
) -> None:
    """Check an evidence bundle against its MANIFEST.sha256; non-zero if anything changed."""

    def body() -> None:
        project = open_project(ctx)
        folder = Path(run)
        if not folder.is_dir():
            if "/" in run or run in (".", ".."):
                raise UsageError(f"{run} is not an evidence folder")
            folder = project.config.evidence_dir / run
            if not folder.is_dir():
                raise UsageError(f"there is no evidence for run {run}")
        problems = verify_bundle(folder)
        payload = {
            "status": "OK" if not problems else "FAIL",
            "action": "evidence verify",
            "run_id": folder.name,
            "message": f"evidence {folder} verifies"
            if not problems
            else f"evidence {folder} does not verify: {problems[0]}",
            "problems": problems,
            "evidence_path": str(folder),
            "exit_code": 6,
        }
        emit(payload, as_json)

    guarded("evidence verify", as_json, body)
