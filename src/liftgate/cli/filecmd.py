"""``liftgate promote`` and ``liftgate rollback``: the file commands, with the standard library.

They are the commands scripts and agents call most, often in loops, so they start without
Typer, Rich or pydantic (``liftgate.cli.entry`` sends them here before anything else is
imported; the Typer app lists them and forwards to ``run`` as well). The output contract is
the one every command keeps (``liftgate.cli.output``): with ``--json`` one JSON object on
stdout, exit 0 for OK/NOOP and non-zero for FAIL, errors as one sentence, never a traceback
(``LIFTGATE_DEBUG=1`` shows one for an unexpected error).

``parse`` returns exactly the fields of ``liftgate.requests.FilePromoteRequest`` /
``FileRollbackRequest`` (a test builds the request models from them, so the two cannot
drift); ``execute`` runs them through the library API.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from liftgate.engine.redaction import Redactor
from liftgate.errors import LiftgateError, UsageError

if TYPE_CHECKING:
    from liftgate.engine.project import Project

__all__ = ["ACTIONS", "error_payload", "execute", "option_names", "parse", "run", "summary"]

ACTIONS = ("promote", "rollback")
_SUMMARY = {
    "promote": "Promote a staged file or folder into its live place, with a backup.",
    "rollback": "Undo the most recent promotion of a target (repeat to go further back).",
}


def summary(action: str) -> str:
    """The command's one-line description."""
    return _SUMMARY[action]


class _Parser(argparse.ArgumentParser):
    """argparse that raises UsageError (one sentence) instead of printing and exiting."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message}", hint=f"see {self.prog} --help")


def _parser(action: str) -> _Parser:
    parser = _Parser(prog=f"liftgate {action}", description=_SUMMARY[action], add_help=True)
    if action == "promote":
        parser.add_argument("staged", help="The staged file or folder.")
    parser.add_argument(
        "--target",
        required=True,
        help="The exact live path to replace."
        if action == "promote"
        else "The live path to roll back.",
    )
    if action == "promote":
        parser.add_argument(
            "--no-backup", action="store_true", help="Skip the backup (if the config allows it)."
        )
        parser.add_argument(
            "--expect-prefix", default=None, help="The target must start with this."
        )
    parser.add_argument(
        "--force", action="store_true", help="Overwrite a target that was edited by hand since."
    )
    parser.add_argument("--dry-run", action="store_true", help="Print the plan; change nothing.")
    parser.add_argument(
        "--wait",
        type=float,
        default=None,
        metavar="SECONDS",
        help="Wait this long for the target's lock.",
    )
    parser.add_argument(
        "--unsafe-guardrail",
        action="append",
        default=[],
        metavar="NAME",
        dest="unsafe_guardrails",
        help="Accept guardrail NAME weakened by the project's override registry, for this "
        "call (a person's decision, recorded in the evidence); repeatable.",
    )
    parser.add_argument(
        "--json", action="store_true", dest="as_json", help="Print one JSON object."
    )
    return parser


def option_names(action: str) -> set[str]:
    """Every option string the command accepts (``--target``, ``-h``, ...)."""
    return set(_parser(action)._option_string_actions)


def parse(action: str, args: Sequence[str]) -> tuple[dict[str, Any], bool]:
    """The request fields of ``liftgate <action> <args>`` and whether ``--json`` was given."""
    values = vars(_parser(action).parse_args(list(args)))
    as_json = bool(values.pop("as_json"))
    wait = values["wait"]
    if wait is not None and not wait >= 0:  # also refuses nan
        raise UsageError(f"invalid wait: must be 0 or more seconds, not {wait}")
    if any(not name for name in values["unsafe_guardrails"]):
        raise UsageError("invalid unsafe_guardrails: a guardrail name must not be empty")
    return values, as_json


def execute(action: str, fields: dict[str, Any], project: Project) -> dict[str, Any]:
    """Run the request on ``project``; the JSON payload of its result (not yet redacted)."""
    from liftgate.files.api import run_request

    result = run_request(action, project, fields)
    payload = result.as_dict()
    if result.status == "FAIL":
        payload["exit_code"] = 5
    return payload


# folder entries a dry run prints (``--json`` lists more)
_HUMAN_ENTRIES = 50


def _human(payload: dict[str, Any]) -> None:
    write = sys.stdout.write
    write(f"{payload['status']} {payload['action']}: {payload['message']}\n")
    for key in ("run_id", "target_path", "backup_path", "evidence_path"):
        if payload.get(key):
            write(f"  {key.replace('_', ' ')}: {payload[key]}\n")
    if payload.get("dry_run"):
        plan = payload.get("plan") or {}
        write(f"  kind: {plan.get('kind')}, target now: {plan.get('before', {}).get('kind')}\n")
        changes = payload.get("changes")
        if changes is not None:
            counts = changes["counts"]
            write(
                f"  changes: {counts['added']} added, {counts['removed']} removed, "
                f"{counts['changed']} changed\n"
            )
            for entry in changes["entries"][:_HUMAN_ENTRIES]:
                suffix = "/" if entry["kind"] == "dir" else ""
                write(f"    {entry['change']:<8} {entry['path']}{suffix}\n")
            hidden = len(changes["entries"]) - _HUMAN_ENTRIES + changes["more"]
            if hidden > 0:
                write(f"    ... and {hidden} more (--json lists {len(changes['entries'])})\n")
        if payload.get("diff"):
            write(payload["diff"])


def error_payload(
    action: str, exc: BaseException, redactor: Redactor
) -> tuple[int, dict[str, Any]]:
    """The exit code and the JSON object (redacted) that report ``exc``: one sentence, a
    stable ``error`` code and a ``hint``. Shared by every command (``cli.output.fail``)."""
    if isinstance(exc, LiftgateError):
        code, name, hint, message = exc.exit_code, exc.code, exc.hint, exc.message
    else:
        code, name, hint = 70, "internal", "set LIFTGATE_DEBUG=1 to see the traceback"
        message = f"internal error: {type(exc).__name__}: {exc}"
        if os.environ.get("LIFTGATE_DEBUG"):
            import traceback

            traceback.print_exc()
    payload: dict[str, Any] = {
        "status": "FAIL",
        "action": action,
        "run_id": None,
        "message": message,
        "error": name,
        "hint": hint,
    }
    if isinstance(exc, LiftgateError) and exc.run_id is not None:
        payload.update(run_id=exc.run_id, evidence_path=exc.evidence_path)
    return code, redactor.data(payload)


def _fail(action: str, exc: BaseException, as_json: bool, redactor: Redactor) -> int:
    """Report ``exc`` as one sentence (JSON or text); the exit code."""
    code, payload = error_payload(action, exc, redactor)
    if as_json:
        sys.stdout.write(json.dumps(payload) + "\n")
    else:
        sys.stderr.write(f"error: {payload['message']}\n")
        if payload["hint"]:
            sys.stderr.write(f"hint: {payload['hint']}\n")
        if payload.get("evidence_path"):
            sys.stderr.write(f"run {payload['run_id']}: evidence in {payload['evidence_path']}\n")
    return code


def run(action: str, args: Sequence[str], config: Path | None = None) -> int:
    """``liftgate <action> <args>``: print the result, return the exit code."""
    as_json = "--json" in args
    redactor = Redactor()
    try:
        fields, as_json = parse(action, args)
        from liftgate.engine.project import Project

        project = Project.open(config)
        redactor = project.redactor
        try:
            payload = redactor.data(execute(action, fields, project))
        finally:
            project.close()
    except SystemExit as exc:  # argparse's --help
        return int(exc.code or 0)
    except KeyboardInterrupt:
        _fail(action, LiftgateError("interrupted"), as_json, redactor)
        return 130
    except Exception as exc:  # the boundary: every error becomes one sentence
        return _fail(action, exc, as_json, redactor)
    if as_json:
        sys.stdout.write(json.dumps(payload, default=str) + "\n")
    else:
        _human(payload)
    if payload.get("status") in ("OK", "NOOP"):
        return 0
    return int(payload.get("exit_code", 1))
