"""The ``liftgate`` console script and ``python -m liftgate``.

The file commands (``promote``, ``rollback``) are run by ``liftgate.cli.filecmd`` straight
away, without loading the Typer application (or Rich and pydantic with it); every other
command, ``--help`` and ``--version`` go to ``liftgate.cli.app``.
"""

from __future__ import annotations

import sys
from pathlib import Path

__all__ = ["main"]


def _split(argv: list[str]) -> tuple[Path | None, str | None, list[str]]:
    """(``--config`` value, command word, the command's arguments) when the global options
    before the command are only ``--config``; (None, None, []) otherwise."""
    config: Path | None = None
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--config" and i + 1 < len(argv):
            config, i = Path(argv[i + 1]), i + 2
        elif arg.startswith("--config="):
            config, i = Path(arg.partition("=")[2]), i + 1
        elif arg.startswith("-"):
            return None, None, []
        else:
            return config, arg, argv[i + 1 :]
    return None, None, []


def main() -> None:
    from liftgate.cli.filecmd import ACTIONS

    config, command, rest = _split(sys.argv[1:])
    if command in ACTIONS:
        from liftgate.cli.filecmd import run

        sys.exit(run(command, rest, config))
    from liftgate.cli.app import main as app_main

    app_main()
