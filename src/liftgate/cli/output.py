"""Output for people and for machines, and the one place errors become exit codes.

With ``--json`` every command prints exactly one JSON object on stdout:
``{"status": "OK"|"FAIL"|"NOOP"|"PAUSED", "action": ..., "run_id": ..., "message": ...}``.
Exit 0 for OK, NOOP and PAUSED (a run waiting for ``liftgate approve``), non-zero for FAIL.
Errors are one sentence, never a traceback (set ``LIFTGATE_DEBUG=1`` to see one for an
unexpected error).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape

from liftgate.cli.filecmd import error_payload
from liftgate.engine.redaction import Redactor
from liftgate.errors import LiftgateError

__all__ = ["emit", "escape", "fail", "guarded", "out"]

_redactor = Redactor()
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def set_redactor(redactor: Redactor) -> None:
    global _redactor
    _redactor = redactor


def emit(
    payload: dict[str, Any], as_json: bool, human: Callable[[dict[str, Any]], None] | None = None
) -> None:
    """Print ``payload`` and exit with the code its status calls for."""
    payload = _redactor.data(payload)
    status = payload.get("status", "OK")
    if as_json:
        sys.stdout.write(json.dumps(payload, sort_keys=False, default=str) + "\n")
    elif human is not None:
        human(payload)
    else:
        colour = {"OK": "green", "NOOP": "cyan", "PAUSED": "yellow"}.get(str(status), "red")
        out.print(
            f"[{colour}]{status}[/] {escape(str(payload.get('action', '')))}: "
            f"{escape(str(payload.get('message', '')))}"
        )
    if status not in ("OK", "NOOP", "PAUSED"):
        raise typer.Exit(int(payload.get("exit_code", 1)))
    raise typer.Exit(0)


def fail(action: str, exc: BaseException, as_json: bool) -> None:
    """Report ``exc`` as one sentence (JSON or text) and exit non-zero."""
    code, payload = error_payload(action, exc, _redactor)
    if as_json:
        sys.stdout.write(json.dumps(payload) + "\n")
    else:
        err.print(f"[red]error:[/] {escape(payload['message'])}")
        if payload["hint"]:
            err.print(f"[dim]hint: {escape(payload['hint'])}[/]")
        if payload.get("evidence_path"):
            err.print(f"run {payload['run_id']}: evidence in {escape(payload['evidence_path'])}")
    raise typer.Exit(code)


def guarded(action: str, as_json: bool, fn: Callable[[], None]) -> None:
    """Run a command body, turning every error into ``fail``."""
    try:
        fn()
    except typer.Exit:
        raise
    except KeyboardInterrupt as exc:
        fail(action, LiftgateError("interrupted"), as_json)
        raise typer.Exit(130) from exc
    except Exception as exc:  # the boundary: every error becomes one sentence
        fail(action, exc, as_json)
