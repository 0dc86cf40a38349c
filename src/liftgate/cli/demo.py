"""``liftgate demo``."""

from __future__ import annotations

from typing import Annotated

import typer

from liftgate.cli.output import escape, guarded, out

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    @app.command()
    def demo(
        keep: Annotated[bool, typer.Option("--keep", help="Keep the sandbox folder.")] = False,
    ) -> None:
        """Walk through promote, verify, rollback and the integrity checks in a sandbox."""

        def body() -> None:
            from liftgate.demo import run_demo

            folder = run_demo(lambda line: out.print(escape(line)), keep=keep)
            out.print(
                f"[green]demo finished[/]{' (kept ' + escape(str(folder)) + ')' if keep else ''}"
            )

        guarded("demo", False, body)
