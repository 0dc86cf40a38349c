"""The ``liftgate`` application: global options and the command groups."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from liftgate import __version__
from liftgate.cli import artifacts, demo, files, mcp, odoo, skills, state

__all__ = ["app", "main"]

app = typer.Typer(
    name="liftgate",
    help="Safe promotions: gated, backed up, atomic, verified, reversible, with evidence.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"liftgate {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option("--config", help="liftgate.toml to use (default: found upward from here)."),
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    ctx.obj = {"config": config}


files.register(app)
state.register(app)
demo.register(app)
odoo.register(app)
artifacts.register(app)
mcp.register(app)
skills.register(app)


def main() -> None:
    app()
