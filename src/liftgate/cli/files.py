"""``liftgate promote`` and ``liftgate rollback`` in the Typer application.

The commands themselves live in ``liftgate.cli.filecmd`` (standard library only, so that
they start fast; the console script calls it directly). Here they are listed in
``liftgate --help`` and forwarded, arguments untouched, when the application is invoked as a
whole (``typer.testing.CliRunner``, or global options other than ``--config``).
"""

from __future__ import annotations

import typer

from liftgate.cli import filecmd

__all__ = ["register"]

_FORWARD = {
    "allow_extra_args": True,
    "ignore_unknown_options": True,
    "help_option_names": [],
}


def register(app: typer.Typer) -> None:
    for action in filecmd.ACTIONS:
        _register(app, action)


def _register(app: typer.Typer, action: str) -> None:
    def command(ctx: typer.Context) -> None:
        raise typer.Exit(filecmd.run(action, ctx.args, (ctx.obj or {}).get("config")))

    command.__doc__ = f"{filecmd.summary(action)} (liftgate {action} --help for its options)"
    app.command(name=action, context_settings=_FORWARD, add_help_option=False)(command)
