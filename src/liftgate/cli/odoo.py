"""``liftgate odoo backup|restore``: Odoo environments."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated

import typer

from liftgate.cli.context import open_project
from liftgate.cli.output import emit, guarded
from liftgate.errors import UsageError

__all__ = ["odoo_app", "register"]

odoo_app = typer.Typer(help="Odoo environments: backup, restore.", no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object (for machines).")]
WaitOpt = Annotated[
    float | None,
    typer.Option("--wait", metavar="SECONDS", help="Wait this long for the env's lock."),
]


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
    as_json: JsonOpt = False,
) -> None:
    """Back up an env's database and filestore together into a verified artifact."""

    def body() -> None:
        from liftgate.odoo.backup import backup

        project = open_project(ctx)
        with _progress(not as_json) as progress:
            result = backup(project, env, strict=strict, wait=wait, progress=progress)
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
    as_json: JsonOpt = False,
) -> None:
    """Restore an artifact into an env: new database, verified, then swapped in."""

    def body() -> None:
        project = open_project(ctx)
        if rollback is not None:
            if artifact is not None or env is not None:
                raise UsageError("--rollback ENV takes no artifact and no --env")
            from liftgate.odoo.rollback import rollback_restore

            emit(rollback_restore(project, rollback, wait=wait).as_dict(), as_json)
        if artifact is None or env is None:
            raise UsageError("name the artifact and the environment: restore ARTIFACT --env ENV")
        from liftgate.odoo.restore import restore

        result = restore(project, artifact, env, neutralize=neutralize, force=force, wait=wait)
        emit(result.as_dict(), as_json)

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
