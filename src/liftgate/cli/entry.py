"""The ``liftgate`` console script and ``python -m liftgate``.

The file commands (``promote``, ``rollback``) are run by ``liftgate.cli.filecmd`` straight
away, without loading the Typer application (or Rich and pydantic with it); every other
command, ``--help`` and ``--version`` go to ``liftgate.cli.app``. Before ``promote`` loads
the library, it starts hashing a large staged file (``liftgate.engine.prefetch``); nothing
heavier than ``hashlib`` is imported before that. A file command ends with ``os._exit``
once its output is flushed (``_exit_now``).
"""

from __future__ import annotations

import os
import sys

__all__ = ["main"]


def _split(argv: list[str]) -> tuple[str | None, str | None, list[str]]:
    """(``--config`` value, command word, the command's arguments) when the global options
    before the command are only ``--config``; (None, None, []) otherwise."""
    config: str | None = None
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--config" and i + 1 < len(argv):
            config, i = argv[i + 1], i + 2
        elif arg.startswith("--config="):
            config, i = arg.partition("=")[2], i + 1
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


def _exit_now(code: int) -> None:
    """End a file command: flush its output, then leave without the interpreter's teardown.

    By the time ``run`` returns, everything the command wrote is closed and made durable
    (the ops store is closed by ``Project.close``); tearing down the loaded modules would
    only delay the exit the caller is waiting for. If the output cannot be flushed (a
    closed pipe), the normal exit runs and reports it.
    """
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        sys.exit(code)
    os._exit(code)


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
        from pathlib import Path  # after the prefetch began: pathlib takes milliseconds

        from liftgate.cli.filecmd import run

        code = run(command, rest, None if config is None else Path(config))
        _exit_now(code)
    from liftgate.cli.app import main as app_main

    app_main()
