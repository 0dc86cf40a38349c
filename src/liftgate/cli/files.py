"""``liftgate promote`` and ``liftgate rollback``."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from liftgate.cli.context import open_project
from liftgate.cli.options import JsonOpt, UnsafeOpt, WaitOpt
from liftgate.cli.output import emit, escape, guarded, out
from liftgate.files.result import FileResult

__all__ = ["register"]

DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="Print the plan; change nothing.")]
ForceOpt = Annotated[
    bool, typer.Option("--force", help="Overwrite a target that was edited by hand since.")
]


def _human(payload: dict[str, Any]) -> None:
    colour = {"OK": "green", "NOOP": "cyan"}.get(payload["status"], "red")
    out.print(f"[{colour}]{payload['status']}[/] {payload['action']}: {escape(payload['message'])}")
    for key in ("run_id", "target_path", "backup_path", "evidence_path"):
        if payload.get(key):
            out.print(f"  {key.replace('_', ' ')}: {escape(str(payload[key]))}")
    if payload.get("dry_run"):
        plan = payload.get("plan") or {}
        out.print(f"  kind: {plan.get('kind')}, target now: {plan.get('before', {}).get('kind')}")
        if payload.get("diff"):
            out.print(escape(payload["diff"]), end="")


def _emit(result: FileResult, as_json: bool) -> None:
    payload = result.as_dict()
    if result.status == "FAIL":
        payload["exit_code"] = 5
    emit(payload, as_json, _human)


def register(app: typer.Typer) -> None:
    @app.command()
    def promote(
        ctx: typer.Context,
        staged: Annotated[str, typer.Argument(help="The staged file or folder.")],
        target: Annotated[str, typer.Option("--target", help="The exact live path to replace.")],
        no_backup: Annotated[
            bool, typer.Option("--no-backup", help="Skip the backup (if the config allows it).")
        ] = False,
        expect_prefix: Annotated[
            str | None, typer.Option("--expect-prefix", help="The target must start with this.")
        ] = None,
        force: ForceOpt = False,
        dry_run: DryRunOpt = False,
        wait: WaitOpt = None,
        unsafe: UnsafeOpt = None,
        as_json: JsonOpt = False,
    ) -> None:
        """Promote a staged file or folder into its live place, with a backup."""

        def body() -> None:
            from liftgate.requests import FilePromoteRequest, build

            request = build(
                FilePromoteRequest,
                staged=staged,
                target=target,
                no_backup=no_backup,
                expect_prefix=expect_prefix,
                force=force,
                dry_run=dry_run,
                wait=wait,
                unsafe_guardrails=unsafe or [],
            )
            _emit(request.run(open_project(ctx)), as_json)

        guarded("promote", as_json, body)

    @app.command()
    def rollback(
        ctx: typer.Context,
        target: Annotated[str, typer.Option("--target", help="The live path to roll back.")],
        force: ForceOpt = False,
        dry_run: DryRunOpt = False,
        wait: WaitOpt = None,
        unsafe: UnsafeOpt = None,
        as_json: JsonOpt = False,
    ) -> None:
        """Undo the most recent promotion of a target (repeat to go further back)."""

        def body() -> None:
            from liftgate.requests import FileRollbackRequest, build

            request = build(
                FileRollbackRequest,
                target=target,
                force=force,
                dry_run=dry_run,
                wait=wait,
                unsafe_guardrails=unsafe or [],
            )
            _emit(request.run(open_project(ctx)), as_json)

        guarded("rollback", as_json, body)
