"""The ``liftgate`` console script and ``python -m liftgate``.

The file commands (``promote``, ``rollback``) are run by ``liftgate.cli.filecmd`` straight
away, without loading the Typer application (or Rich and pydantic with it); every other
command, ``--help`` and ``--version`` go to ``liftgate.cli.app``. Before ``promote`` loads
the library, it starts hashing a large staged file (``liftgate.engine.prefetch``).
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


# options of ``liftgate promote`` that take the next argument as their value
_VALUED = frozenset({"--target", "--expect-prefix", "--wait", "--unsafe-guardrail"})


def _staged(rest: list[str]) -> str | None:
    """The STAGED argument of ``liftgate promote <rest>`` when it is plain to see; None for a
    dry run, for help, or when anything is unusual (argparse decides the rest)."""
    staged: str | None = None
    i = 0
    while i < len(rest):
        arg = rest[i]
        if arg in ("--dry-run", "-h", "--help", "--"):
            return None
        if arg in _VALUED:
            i += 2
            continue
        if not arg.startswith("-"):
            if staged is not None:
                return None
            staged = arg
        i += 1
    return staged


def main() -> None:
    config, command, rest = _split(sys.argv[1:])
    if command == "promote":
        staged = _staged(rest)
        if staged:
            # the staged file's sha256 is computed while the library loads (prefetch)
            from liftgate.engine import prefetch

            prefetch.start(staged)
    from liftgate.cli.filecmd import ACTIONS

    if command in ACTIONS:
        from liftgate.cli.filecmd import run

        sys.exit(run(command, rest, config))
    from liftgate.cli.app import main as app_main

    app_main()
