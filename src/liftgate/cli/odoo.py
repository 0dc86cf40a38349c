"""``liftgate odoo backup|restore``: Odoo environments."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer

from liftgate.cli.context import open_project
from liftgate.cli.options import JsonOpt, UnsafeOpt, WaitOpt
from liftgate.cli.output import emit, guarded
from liftgate.errors import UsageError

__all__ = ["odoo_app", "register"]

odoo_app = typer.Typer(
    help="Odoo environments: backup, restore, deploy, status.", no_args_is_help=True
)


@contextmanager
def _progress(enabled: bool) -> Iterator[Callable[[str, int, int], None] | None]:
    """A Rich progress bar for long steps, only for a person at a terminal."""
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    from rich.progress import Progress

    with Progress(transient=True) as bar:
        tasks: dict[str, int] = {}

        def update(step: str, done: int, total: int) -> None:
            if step not in tasks:
                tasks[step] = int(bar.add_task(step, total=total))
            bar.update(tasks[step], completed=done)  # type: ignore[arg-type]

        yield update


def register(app: typer.Typer) -> None:
    app.add_typer(odoo_app, name="odoo")


@odoo_app.command("backup")
def backup_cmd(
    ctx: typer.Context,
    env: Annotated[str, typer.Argument(help="The environment to back up.")],
    strict: Annotated[
        bool, typer.Option("--strict", help="Fail if a referenced attachment file is missing.")
    ] = False,
    wait: WaitOpt = None,
    unsafe: UnsafeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Back up an env's database and filestore together into a verified artifact."""

    def body() -> None:
        from liftgate.requests import BackupRequest, build

        request = build(
            BackupRequest, env=env, strict=strict, wait=wait, unsafe_guardrails=unsafe or []
        )
        project = open_project(ctx)
        with _progress(not as_json) as progress:
            result = request.run(project, progress=progress)
        emit(result.as_dict(), as_json)

    guarded("odoo backup", as_json, body)


@odoo_app.command("restore")
def restore_cmd(
    ctx: typer.Context,
    artifact: Annotated[str | None, typer.Argument(help="Artifact id to restore.")] = None,
    env: Annotated[
        str | None, typer.Option("--env", help="The environment to restore into.")
    ] = None,
    neutralize: Annotated[
        bool | None,
        typer.Option(
            "--neutralize/--no-neutralize",
            help="Neutralize the copy (default: the env's setting; true unless production).",
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace an existing database (kept for --rollback).")
    ] = False,
    rollback: Annotated[
        str | None,
        typer.Option("--rollback", metavar="ENV", help="Put ENV's pre-restore state back."),
    ] = None,
    wait: WaitOpt = None,
    unsafe: UnsafeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Restore an artifact into an env: new database, verified, then swapped in."""

    def body() -> None:
        project = open_project(ctx)
        if rollback is not None:
            if artifact is not None or env is not None:
                raise UsageError("--rollback ENV takes no artifact and no --env")
            if unsafe:
                raise UsageError("--rollback ENV takes no --unsafe-guardrail")
            from liftgate.odoo.rollback import rollback_restore

            emit(rollback_restore(project, rollback, wait=wait).as_dict(), as_json)
        if artifact is None or env is None:
            raise UsageError("name the artifact and the environment: restore ARTIFACT --env ENV")
        from liftgate.requests import RestoreRequest, build

        request = build(
            RestoreRequest,
            artifact=artifact,
            env=env,
            neutralize=neutralize,
            force=force,
            wait=wait,
            unsafe_guardrails=unsafe or [],
        )
        emit(request.run(project).as_dict(), as_json)

    guarded("odoo restore", as_json, body)


@odoo_app.command("export")
def export_cmd(
    ctx: typer.Context,
    artifact: Annotated[str, typer.Argument(help="Artifact id to export.")],
    output: Annotated[
        str, typer.Option("--output", "-o", metavar="FILE.zip", help="The zip file to write.")
    ],
    fmt: Annotated[
        str, typer.Option("--format", help="Only odoo-zip: what Odoo's database manager restores.")
    ] = "odoo-zip",
    force: Annotated[bool, typer.Option("--force", help="Replace an existing output.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Write an artifact as an Odoo backup zip (dump.sql, manifest.json, filestore/)."""

    def body() -> None:
        from liftgate.odoo.odoozip import export_zip

        project = open_project(ctx)
        with _progress(not as_json) as progress:
            result = export_zip(project, artifact, output, fmt=fmt, force=force, progress=progress)
        emit(result.as_dict(), as_json)

    guarded("odoo export", as_json, body)


@odoo_app.command("import")
def import_cmd(
    ctx: typer.Context,
    file: Annotated[
        str, typer.Argument(metavar="FILE", help="Odoo backup zip, or a pg_dump -Fc archive.")
    ],
    env: Annotated[str, typer.Option("--env", help="The env the artifact is made for.")],
    strict: Annotated[
        bool,
        typer.Option("--strict", help="Fail if a referenced attachment file is missing or bad."),
    ] = False,
    wait: WaitOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Turn an Odoo backup zip into a verified artifact of ENV (untrusted input: checked)."""

    def body() -> None:
        from liftgate.odoo.odooimport import import_file

        project = open_project(ctx)
        with _progress(not as_json) as progress:
            result = import_file(project, file, env, strict=strict, wait=wait, progress=progress)
        emit(result.as_dict(), as_json)

    guarded("odoo import", as_json, body)


@odoo_app.command("deploy")
def deploy_cmd(
    ctx: typer.Context,
    env: Annotated[str, typer.Argument(help="The environment to deploy to.")],
    commit: Annotated[
        str, typer.Option("--commit", metavar="SHA", help="Commit (SHA, branch or tag) to deploy.")
    ],
    repo: Annotated[
        str | None,
        typer.Option("--repo", metavar="URL_OR_PATH", help="Addons repository (default: env's)."),
    ] = None,
    modules: Annotated[
        str,
        typer.Option(
            "--modules",
            metavar="auto|all|a,b",
            help="auto: installed modules whose files changed; all; or a list.",
        ),
    ] = "auto",
    install: Annotated[
        str | None,
        typer.Option("--install", metavar="a,b", help="Modules to install (not yet installed)."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the plan; change nothing.")
    ] = False,
    wait: WaitOpt = None,
    unsafe: UnsafeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Deploy a commit of the addons repository: update changed modules, with a way back."""

    def body() -> None:
        names = [m.strip() for m in (install or "").split(",") if m.strip()]
        from liftgate.requests import DeployRequest, build

        request = build(
            DeployRequest,
            env=env,
            commit=commit,
            repo=repo,
            modules=modules,
            install=names,
            dry_run=dry_run,
            wait=wait,
            unsafe_guardrails=unsafe or [],
        )
        result = request.run(open_project(ctx))
        emit(result.as_dict(), as_json, None if as_json else _deploy_human)

    guarded("odoo deploy", as_json, body)


def _deploy_human(payload: dict[str, Any]) -> None:
    from liftgate.cli.output import escape, out

    out.print(f"[green]{payload['status']}[/] odoo deploy: {escape(str(payload['message']))}")
    plan = payload.get("plan")
    if plan:
        for module in plan["modules"]:
            flags = [k for k in ("update", "install", "available", "enterprise") if module.get(k)]
            out.print(
                f"  {escape(module['name']):<40} {escape(str(module['version'])):<14} "
                f"{escape(module['license']):<8} {', '.join(flags)}"
            )
        out.print(f"  command: {escape(' '.join(plan['update_argv']))}")
    elif payload.get("evidence_path"):
        out.print(f"  evidence: {escape(str(payload['evidence_path']))}")


@odoo_app.command("status")
def status_cmd(
    ctx: typer.Context,
    env: Annotated[str, typer.Argument(help="The environment.")],
    as_json: JsonOpt = False,
) -> None:
    """Show an env's deployed commit, release, and last run with its outcome."""

    def body() -> None:
        from liftgate.odoo.status import env_status

        emit(env_status(open_project(ctx), env), as_json, None if as_json else _status_human)

    guarded("odoo status", as_json, body)


def _status_human(payload: dict[str, Any]) -> None:
    from liftgate.cli.output import escape, out

    if "active_slot" in payload:
        out.print(
            f"[bold]{escape(payload['env'])}[/] ({escape(payload['role'])}): "
            f"{escape(str(payload['message']))}"
        )
        for slot, info in payload["slots"].items():
            mark = "*" if slot == payload["active_slot"] else " "
            out.print(f"  {mark} {slot:<6} {escape(json.dumps(info))}")
        promo = payload.get("last_promotion")
        if promo:
            out.print(
                f"  last promotion {promo['run_id']} {promo['status']}: "
                f"{escape(str(promo['message']))}"
            )
        return

    out.print(f"[bold]{escape(payload['env'])}[/] ({escape(payload['role'])})")
    for label, key in (("commit", "commit"), ("release", "release"), ("url", "url")):
        out.print(f"  {label:<12} {escape(str(payload.get(key) or '-'))}")
    for label, key in (("last deploy", "last_deploy"), ("last run", "last_run")):
        run = payload.get(key)
        text = f"{run['run_id']} {run['kind']} {run['status']}: {run['message']}" if run else "-"
        out.print(f"  {label:<12} {escape(text)}")
    db = payload["database"]
    reach = "reachable" if db.get("reachable") else f"UNREACHABLE ({db.get('error')})"
    out.print(f"  {'database':<12} {escape(db['name'])} {escape(reach)}")


@odoo_app.command("promote")
def promote_cmd(
    ctx: typer.Context,
    staging: Annotated[str, typer.Argument(help="The staging env whose commit is promoted.")],
    prod: Annotated[str, typer.Argument(help="The production env (with blue/green slots).")],
    data: Annotated[
        str,
        typer.Option(
            "--data",
            metavar="production|staging",
            help="Green's data: production's current data (default) or staging's.",
        ),
    ] = "production",
    approve: Annotated[
        bool, typer.Option("--approve", help="Approve now (a person): no pause before the freeze.")
    ] = False,
    replace_data: Annotated[
        bool,
        typer.Option(
            "--yes-replace-production-data", help="With --data staging: replace production's data."
        ),
    ] = False,
    close_window: Annotated[
        bool, typer.Option("--close-window", help="End the open rollback window of the last one.")
    ] = False,
    copy: Annotated[
        str,
        typer.Option(
            "--copy",
            metavar="dump|template",
            help="How blue's data is copied: dump (reads keep working) or template (faster, "
            "a short full outage).",
        ),
    ] = "dump",
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Check the preconditions, print the plan.")
    ] = False,
    wait: WaitOpt = None,
    unsafe: UnsafeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Promote staging's deployed commit to production's inactive slot and cut over."""

    def body() -> None:
        from liftgate.requests import PromoteRequest, build

        request = build(
            PromoteRequest,
            staging=staging,
            prod=prod,
            data=data,
            approve=approve,
            dry_run=dry_run,
            replace_production_data=replace_data,
            close_window=close_window,
            copy=copy,
            wait=wait,
            unsafe_guardrails=unsafe or [],
        )
        emit(request.run(open_project(ctx)).as_dict(), as_json)

    guarded("odoo promote", as_json, body)


@odoo_app.command("rollback")
def rollback_cmd(
    ctx: typer.Context,
    prod: Annotated[str, typer.Argument(help="The production env to switch back.")],
    discard: Annotated[
        bool,
        typer.Option(
            "--discard-green-writes",
            help="Roll back even though green accepted writes (they stay in green, renamed).",
        ),
    ] = False,
    wait: WaitOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Switch production back to the slot it ran before the last promotion (in its window)."""

    def body() -> None:
        from liftgate.odoo.prodrollback import rollback_promotion

        result = rollback_promotion(
            open_project(ctx), prod, discard_green_writes=discard, wait=wait
        )
        emit(result.as_dict(), as_json)

    guarded("odoo rollback", as_json, body)
